"""Tables as a planner reads them in notebooks and reports: human column names with units,
integer counts, local times to the second, "n/a" (not 0) where a place has no destination of
a kind, nothing truncated. Each function returns a pandas ``Styler`` (displayed as HTML,
values escaped, never typeset as LaTeX maths: a cost such as ``$12.30`` stays text) built from
the plain DataFrames of :mod:`pna_helpers.results` / ``jobs`` / ``plan`` / ``qa`` / ``explain``.
"""

from __future__ import annotations

from typing import Any

from pna_helpers import _html as esc
from pna_helpers.results import SCORE_INFO

#: Sub-score -> the destination category (``run.json`` counts) it needs; no destination of
#: that kind means the score is not applicable ("n/a"), not 0.
SCORE_DESTINATIONS: dict[str, tuple[str, ...]] = {
    "opportunity_k12_education": ("schools",),
    "opportunity_technical_vocational_college": ("colleges",),
    "opportunity_higher_education": ("universities",),
    "core_services_doctors": ("doctors",), "core_services_dentists": ("dentists",),
    "core_services_hospitals": ("hospitals",), "core_services_pharmacies": ("pharmacies",),
    "core_services_grocery": ("supermarkets",),
    "core_services_social_services": ("social_services",),
    "retail": ("retail",), "recreation_parks": ("parks",),
    "recreation_community_centers": ("community_centers",), "transit": ("transit",),
}
#: Sub-score -> the prefix of its block columns (``<prefix>_high_stress``: how many of the kind
#: each block reaches on the whole network). Nothing reached from any block = nothing to score.
SCORE_BLOCK_PREFIX: dict[str, str] = {
    "opportunity_employment": "emp", "opportunity_k12_education": "schools",
    "opportunity_technical_vocational_college": "colleges",
    "opportunity_higher_education": "universities",
    "core_services_doctors": "doctors", "core_services_dentists": "dentists",
    "core_services_hospitals": "hospitals", "core_services_pharmacies": "pharmacies",
    "core_services_grocery": "supermarkets", "core_services_social_services": "social_services",
    "retail": "retail", "recreation_parks": "parks", "recreation_trails": "trails",
    "recreation_community_centers": "community_centers", "transit": "transit",
}
NA_NOTE = "n/a: the place has no destination of this kind, so there is nothing to score."


def score_text(value: Any) -> str:
    """A 0-100 score as every table and report header shows it: ``85.89 / 100``; ``n/a`` for
    a missing score (None, NaN, not a number).

    Parameters
    ----------
    value : float or None
        The score, 0-100.

    Returns
    -------
    str
        Two decimals, then ``" / 100"``.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{v:.2f} / 100" if v == v else "n/a"


def _style(df: Any, fmt: dict[str, Any] | None = None) -> Any:
    # column headers are escaped too (place names head the compare table): Styler.format
    # escapes only the cells
    return (df.style.format(fmt or {}, na_rep="n/a", escape="html")
            .format_index(escape="html", axis=1)
            .hide(axis="index")
            .set_table_attributes(f'class="{esc.NO_MATH_CLASS}"')
            .set_table_styles([{"selector": "th", "props": "text-align: left"},
                               {"selector": "td", "props": "text-align: left; "
                                                         "white-space: normal"}]))


def not_applicable(res: Any) -> set[str]:
    """Score ids that do not apply: the run found no destination of their kind.

    Destination counts come from ``run.json``; an official export (no counts) has its
    destination files counted instead. Employment does not apply to a PNA run outside the
    United States (no jobs data), US mode decided as the engine does
    (:attr:`~pna_helpers.results.Results.is_us`, i.e. ``Params.is_us``). Whatever the counts,
    a sub-score whose kind no block reaches even on the whole network (its
    ``<kind>_high_stress`` block column is 0 everywhere, :data:`SCORE_BLOCK_PREFIX`) does not
    apply: the engine leaves it out of its category, as trails when no path is long enough
    to be a trail, or jobs in an export without jobs data. A main score (opportunity, core
    services, recreation) none of whose sub-scores applies does not apply either.

    Parameters
    ----------
    res : Results
        A loaded result set (:func:`~pna_helpers.results.load_results`).

    Returns
    -------
    set of str
        ``score_id`` values (keys of :data:`SCORE_DESTINATIONS`, or
        ``opportunity_employment``).
    """
    counts = (((res.run or {}).get("counts") or {}).get("destinations") or {})
    if not counts:  # an official export: count the destination files
        counts = {c: len(g) for c, g in res.all_destinations().items()}
    out = {sid for sid, cats in SCORE_DESTINATIONS.items()
           if all(int(counts.get(c, 0) or 0) == 0 for c in cats)}
    if res.is_us is False:
        out.add("opportunity_employment")  # no jobs data outside the US (LODES)
    out |= _nothing_reached(res)
    for group in ("opportunity", "core_services", "recreation"):
        subs = [sid for sid, info in SCORE_INFO.items()
                if info["group"] == group and not info["main"]]
        if subs and all(sid in out for sid in subs):
            out.add(group)
    return out


def _nothing_reached(res: Any) -> set[str]:
    """Sub-scores whose ``<kind>_high_stress`` block column is 0 in every block."""
    import pandas as pd

    from pna_engine.errors import InputError

    try:
        blocks = res.blocks
    except InputError:  # no blocks in the export: the counts alone decide
        return set()
    out = set()
    for sid, prefix in SCORE_BLOCK_PREFIX.items():
        col = f"{prefix}_high_stress"
        if col in blocks.columns and len(blocks):
            reached = pd.to_numeric(blocks[col], errors="coerce").fillna(0)
            if not (reached > 0).any():
                out.add(sid)
    return out


def score_rows(res: Any, main_only: bool = False) -> Any:
    """City scores as rows: category, score (0-100; NaN = n/a), group, meaning.

    Parameters
    ----------
    res : Results
        A loaded result set (:func:`~pna_helpers.results.load_results`).
    main_only : bool
        Only the overall and main category scores (default False: sub-scores too).

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``Score`` (label), ``Group``, ``Score (0-100)`` (rounded to 2
        decimals; NaN where :func:`not_applicable`) and ``What it measures``, in
        :data:`~pna_helpers.results.SCORE_INFO` order.
    """
    import pandas as pd

    s = res.scores()
    na = not_applicable(res)
    rows = []
    for sid, info in SCORE_INFO.items():
        if sid not in s.index or (main_only and not info["main"]):
            continue
        v = float(s[sid])
        rows.append({"id": sid, "Score": info["label"], "Group": info["group"],
                     "Score (0-100)": float("nan") if sid in na else round(v, 2),
                     "What it measures": info.get("meaning", "")})
    return pd.DataFrame(rows)


def scores(res: Any) -> Any:
    """The main scores with what they measure, then population and centreline mileage.

    Parameters
    ----------
    res : Results
        A loaded result set (:func:`~pna_helpers.results.load_results`).

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Score``, ``Value`` (text: ``85.89 / 100``, ``n/a``, people, miles) and
        ``What it measures``.

    Raises
    ------
    InputError
        The results have no road segments (``neighborhood_ways``) to measure mileage from.
    """
    import pandas as pd

    df = score_rows(res, main_only=True)[["Score", "Score (0-100)", "What it measures"]]
    df = df.rename(columns={"Score (0-100)": "Value"})
    df["Value"] = [score_text(v) for v in df["Value"]]
    s = res.scores()
    miles = res.mileage_by_stress().groupby("stress")["miles"].sum()
    extra = [("Population", f"{s.get('population_total', float('nan')):,.0f} people"
              if s.get("population_total", float("nan")) == s.get("population_total") else "n/a",
              "people living in the place's blocks"),
             ("Low-stress roads", f"{miles.get('low', 0.0):.1f} mi",
              "centreline miles (a two-way road counts once)"),
             ("High-stress roads", f"{miles.get('high', 0.0):.1f} mi",
              "centreline miles (a two-way road counts once)")]
    df = pd.concat([df, pd.DataFrame(extra, columns=df.columns)], ignore_index=True)
    return _style(df)


def all_scores(res: Any) -> Any:
    """Every city score (main and sub-scores) with human names; n/a where not applicable.

    Parameters
    ----------
    res : Results
        A loaded result set (:func:`~pna_helpers.results.load_results`).

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Group``, ``Score`` and ``Score (0-100)`` (2 decimals).
    """
    df = score_rows(res)
    df["Group"] = df["Group"].str.replace("_", " ").str.capitalize()
    return _style(df[["Group", "Score", "Score (0-100)"]], {"Score (0-100)": "{:.2f}"})


def _local(t: Any) -> Any:
    import pandas as pd

    t = pd.to_datetime(t, utc=True, errors="coerce")
    return t.dt.tz_convert(_local_zone()).dt.strftime("%Y-%m-%d %H:%M:%S")


def _local_zone() -> Any:
    import datetime as dt

    return dt.datetime.now().astimezone().tzinfo


def jobs(table: Any) -> Any:
    """The jobs table of :func:`pna_helpers.jobs.jobs_table` for reading: local times to the
    second, duration in seconds, an empty reason when there is none.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`pna_helpers.jobs.jobs_table` (``job_id``, ``place``,
        ``status``, ``phase``, ``created_at``, ``started_at``, ``stopped_at``,
        ``duration_s``, ``reason``).

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Job``, ``Place``, ``Status``, ``Phase``, ``Submitted``, ``Started``,
        ``Finished`` (headers name the local time zone), ``Duration (s)`` and ``Reason``.
    """
    import datetime as dt

    import pandas as pd

    df = pd.DataFrame({
        "Job": table["job_id"].astype(str), "Place": table["place"].astype(str),
        "Status": table["status"].astype(str),
        "Phase": table["phase"].fillna("").astype(str),
        "Submitted": _local(table["created_at"]), "Started": _local(table["started_at"]),
        "Finished": _local(table["stopped_at"]),
        "Duration (s)": pd.to_numeric(table["duration_s"], errors="coerce").round(0),
        "Reason": table["reason"].fillna("").astype(str),
    })
    for c in ("Submitted", "Started", "Finished"):
        df[c] = df[c].fillna("")
    zone = dt.datetime.now().astimezone().strftime("%Z")
    df = df.rename(columns={c: f"{c} ({zone})" for c in ("Submitted", "Started", "Finished")})
    return _style(df, {"Duration (s)": "{:,.0f}"})


def score_changes(sc: Any, all_scores: bool = False) -> Any:
    """A scenario's score changes: before, after and change, in score points (0-100).

    Population and mileage rows are left out (they are not 0-100 scores).

    Parameters
    ----------
    sc : ScenarioResult
        A :class:`~pna_helpers.scenario.ScenarioResult`.
    all_scores : bool
        Include the sub-scores (default False: the overall and main category scores only).

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Score``, ``Before (0-100)``, ``After (0-100)`` and ``Change (points)``.
    """
    labels = {info["label"] for info in SCORE_INFO.values()}
    df = sc.score_changes(all_scores=all_scores).reset_index()
    df.columns = ["Score", "Before (0-100)", "After (0-100)", "Change (points)"]
    df = df[df["Score"].isin(labels)]  # scores only (population and mileage are not 0-100)
    return _style(df, {"Before (0-100)": "{:.1f}", "After (0-100)": "{:.1f}",
                       "Change (points)": "{:+.2f}"})


def compare_scores(table: Any) -> Any:
    """Scores of several places side by side, as a planner reads them: the score, one column
    per place (scores 0-100 with 2 decimals, ``n/a`` where a score does not apply) and, for
    two places, the change (signed: points for scores). The caption states the units.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`pna_helpers.compare.scores_table` (indexed by score label, one column per
        place, optional ``difference``); its population and mileage rows (``all_scores``)
        read in people and miles.

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Score``, one per place and ``Change``; place names are escaped.
    """
    import pandas as pd

    from pna_helpers.compare import EXTRA_ROWS

    df = table.rename(columns={"difference": "Change"}).rename_axis("Score").reset_index()
    places = [c for c in df.columns if c not in ("Score", "Change")]
    extra = df["Score"].isin(EXTRA_ROWS)
    styler = _style(df, {c: "{:.2f}" for c in places})
    people = df.index[df["Score"] == EXTRA_ROWS[0]]
    miles = df.index[df["Score"].isin(EXTRA_ROWS[1:])]
    for rows, fmt in ((people, "{:,.0f}"), (miles, "{:.1f}")):
        styler = styler.format(fmt, subset=pd.IndexSlice[rows, places], na_rep="n/a")
    if "Change" in df.columns:
        for rows, fmt in ((df.index[~extra], "{:+.2f}"), (people, "{:+,.0f}"),
                          (miles, "{:+.1f}")):
            styler = styler.format(fmt, subset=pd.IndexSlice[rows, ["Change"]], na_rep="n/a")
    caption = "Scores 0-100 (n/a: the place has no destination of that kind)"
    if "Change" in df.columns:
        caption += "; change: second minus first, in points"
    if extra.any():
        caption += "; population in people, roads in centreline miles (a two-way road counts once)"
    return styler.set_caption(esc.text(caption))


def tags(change_tags: dict[str, Any]) -> str:
    """OSM tags of a change as ``key=value`` text (a removed tag as ``no key``).

    Parameters
    ----------
    change_tags : dict of str to Any
        Tag -> value, ``None`` for a removed tag (as :func:`pna_helpers.scenario.change_tags`
        returns).

    Returns
    -------
    str
        The tags joined by ``", "``.
    """
    return ", ".join(f"{k}={v}" if v is not None else f"no {k}" for k, v in change_tags.items())


def island_connectors(candidates: Any) -> Any:
    """:func:`pna_helpers.scenario.find_island_connectors` for reading.

    Parameters
    ----------
    candidates : pandas.DataFrame
        As returned by :func:`~pna_helpers.scenario.find_island_connectors`.

    Returns
    -------
    pandas.io.formats.style.Styler
        The same rows with human column names (``OSM way``, ``Name``, ``Road class``,
        ``Low-stress islands joined``, ``Segment pairs newly connected on low stress``).
    """
    df = candidates.rename(columns={
        "osm_id": "OSM way", "name": "Name", "functional_class": "Road class",
        "islands_joined": "Low-stress islands joined",
        "gain": "Segment pairs newly connected on low stress"})
    return _style(df, {"Segment pairs newly connected on low stress": "{:,.0f}"})


def points_text(v: Any) -> str:
    """Score points as every table, chart label and sentence shows them.

    Parameters
    ----------
    v : float or None
        Score points (a change).

    Returns
    -------
    str
        A sign and 2 decimals (``+3.55``); ``0.00`` for what rounds to zero (never
        ``-0.00``); ``n/a`` for None or NaN.
    """
    if v is None or v != v:
        return "n/a"
    v = float(v)
    return "0.00" if abs(v) < 0.005 else f"{v:+.2f}"


def _street(names: Any) -> list[str]:
    """Street names for a table: "" where a way has none."""
    return [n if isinstance(n, str) else "" for n in names]


def _road_class(classes: Any) -> Any:
    """Functional classes for a table: ``living street``, "" where none."""
    return classes.fillna("").astype(str).str.replace("_", " ")


def _ids(v: Any) -> str:
    return ", ".join(str(int(i)) for i in v) if isinstance(v, list | tuple) else str(v)


def _way_link(v: Any) -> str:
    """An OSM way id as a link to the way on openstreetmap.org (opens a new tab); a way that an
    edit added (:data:`pna_helpers.osmedit.NEW_ID_BASE` and above) is not on OSM: no link;
    no id (None, NaN): empty."""
    from pna_helpers.osmedit import NEW_ID_BASE

    if v is None or v != v:
        return ""
    i = int(v)
    if i > NEW_ID_BASE:
        return f"{i} (new)"
    return (f'<a href="{esc.href(f"https://www.openstreetmap.org/way/{i}")}" '
            f'target="_blank" rel="noopener">{i}</a>')


def plan(p: Any, currency: str = "$") -> Any:
    """An improvement plan (:func:`pna_helpers.plan.make_plan`) for reading: one row per
    step, in order, with the street, treatment, length, cost, score gain and the score after it.

    Parameters
    ----------
    p : Plan
        The plan (its ``table`` and ``target`` are used).
    currency : str
        Symbol written before each cost (default ``"$"``: the default cost table is rough US
        dollars); pass ``""`` or your own when you gave ``make_plan`` costs in another
        currency.

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Step``, ``OSM ways``, ``Street``, ``Road class``, ``Treatment``,
        ``Length (km)`` (3 decimals), ``Cost``, ``Score gain (points)`` (signed, 2 decimals),
        ``Pairs newly connected on low stress``, ``<Target> score after (0-100)``,
        ``Length so far (km)`` and ``Cost so far``. An empty plan gives the columns without
        rows.
    """
    import pandas as pd

    t = p.table
    target = str(getattr(p, "target", "overall")).replace("_", " ").capitalize()
    after = f"{target} score after (0-100)"

    def money(v: Any) -> str:
        return "n/a" if v is None or v != v else f"{esc.text(currency)}{float(v):,.0f}"

    df = pd.DataFrame({
        "Step": t["step"].astype(int),
        "OSM ways": [_ids(v) for v in t["osm_ids"]],
        "Street": _street(t["name"]),
        "Road class": _road_class(t["functional_class"]),
        "Treatment": t["treatment"].astype(str),
        "Length (km)": t["length_km"].astype(float),
        "Cost": t["cost"].astype(float),
        "Score gain (points)": t["gain"].astype(float),
        "Pairs newly connected on low stress": t["low_stress_pairs_gained"].astype(int),
        after: t["score"].astype(float),
        "Length so far (km)": t["cumulative_km"].astype(float),
        "Cost so far": t["cumulative_cost"].astype(float),
    })
    return _style(df, {"Length (km)": "{:.3f}", "Cost": money, "Score gain (points)": points_text,
                       "Pairs newly connected on low stress": "{:,.0f}", after: "{:.2f}",
                       "Length so far (km)": "{:.3f}", "Cost so far": money})


def osm_qa(q: Any, top: int | None = 25) -> Any:
    """The ranked "tags to check" of :func:`pna_helpers.qa.osm_qa` for reading: the way (a
    link to it on openstreetmap.org), the missing tag, the default used instead, the values
    tried and how far they move the overall score.

    Parameters
    ----------
    q : QA
        The QA result (its ``table`` is used, already ranked).
    top : int or None
        Rows to show (default 25; None: all).

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Rank``, ``OSM way`` (link), ``Street``, ``Road class``, ``Missing tag``,
        ``Default used``, ``Values tried``, ``Overall score with each value (0-100)``,
        ``Score range (points)`` (2 decimals), ``Segments``, ``Length (m)`` and ``Note``.
    """
    import pandas as pd

    t = q.table if top is None else q.table.head(top)

    def joined(v: Any, fmt: str = "{}") -> str:
        return ", ".join(fmt.format(x) for x in v) if isinstance(v, list | tuple) else ""

    df = pd.DataFrame({
        "Rank": range(1, len(t) + 1),
        "OSM way": t["osm_id"].astype(int),
        "Street": _street(t["name"]),
        "Road class": _road_class(t["functional_class"]),
        "Missing tag": t["tag"].astype(str),
        "Default used": t["default_used"].fillna("").astype(str),
        "Values tried": [joined(v) for v in t["alternatives"]],
        "Overall score with each value (0-100)": [joined(v, "{:.2f}") for v in t["scores"]],
        "Score range (points)": t["score_range"].astype(float),
        "Segments": t["segments"].astype(int),
        "Length (m)": t["length_km"].astype(float) * 1000.0,
        "Note": t["note"].fillna("").astype(str) if "note" in t else "",
    })
    return _style(df, {"OSM way": _way_link, "Score range (points)": "{:.2f}",
                       "Length (m)": "{:,.0f}"})


def contributions(ex: Any, score: str | None = None) -> Any:
    """What moved each score from A to B (:func:`pna_helpers.explain.explain`), in score
    points with 2 decimals and a sign; the last row is the total change.

    Parameters
    ----------
    ex : Explanation
        The explanation.
    score : str or None
        One main score id (e.g. ``"overall_score"``); None (default): every main score.

    Returns
    -------
    pandas.io.formats.style.Styler
        Column ``Contribution`` (the input group, then ``Total change``) and one column per
        score, labelled ``<Score> (points)``.
    """
    df = ex.table(score)
    df = df.rename(columns={c: f"{c} (points)" for c in df.columns})
    df.index.name = "Contribution"
    df = df.reset_index()
    cols = [c for c in df.columns if c != "Contribution"]
    return _style(df, dict.fromkeys(cols, points_text)).set_table_styles(
        [{"selector": "tr:last-child td", "props": "font-weight: bold; "
                                                   "border-top: 1px solid #999"}], overwrite=False)


def explain_details(ex: Any, rows: int = 20) -> list[tuple[str, Any]]:
    """The detail tables of an explanation (:func:`pna_helpers.explain.explain`) for reading,
    each with a title: the methodology quirk by quirk, the ways by their own contribution, the
    destinations added and removed, the segments whose stress changed. Empty tables are left
    out; score points have 2 decimals and a sign.

    Parameters
    ----------
    ex : Explanation
        The explanation.
    rows : int
        Rows shown of the long tables (ways, segments; default 20); the title says how many
        there are.

    Returns
    -------
    list of (str, pandas.io.formats.style.Styler)
    """
    import pandas as pd

    out: list[tuple[str, Any]] = []
    if ex.quirks is not None and len(ex.quirks):
        q = ex.quirks.copy()
        q.columns = [f"{SCORE_INFO.get(c, {}).get('label', c)} (points)" for c in q.columns]
        q.index.name = "Quirk"
        q = q.reset_index()
        out.append(("Methodology, quirk by quirk", _style(
            q, {c: points_text for c in q.columns if c != "Quirk"})))
    tw = ex.top_ways
    if tw is not None and len(tw):
        n = len(tw)
        tw = tw.head(rows)
        df = pd.DataFrame({
            "OSM way": tw["osm_id"].astype("int64"),
            "Street": _street(tw.get("name", [""] * len(tw))),
            "What changed": tw["cause"].fillna("").astype(str),
            "Tag changes": tw["tag_diff"].fillna("").astype(str),
            "Segments": tw["segments"].astype(int),
            "Length (m)": tw["length_m"].astype(float),
            "Overall score contribution (points)": tw["overall_points"].astype(float)})
        out.append((f"Ways by their own contribution (leave-one-out; {n} re-scored)", _style(
            df, {"OSM way": _way_link, "Length (m)": "{:,.0f}",
                 "Overall score contribution (points)": points_text})))
    d = ex.destinations
    if d is not None and len(d):
        d = d[(d["added"] > 0) | (d["removed"] > 0)]
        if len(d):
            df = pd.DataFrame({
                "Destination kind": d["category"].astype(str).str.replace("_", " "),
                "In A": d["a"].astype(int), "In B": d["b"].astype(int),
                "Added": d["added"].astype(int), "Removed": d["removed"].astype(int)})
            out.append(("Destinations added and removed", _style(df)))
    seg = ex.segments
    if seg is not None and len(seg):
        n = len(seg)
        s = seg.head(rows)

        df = pd.DataFrame({
            "OSM way": s["osm_id"],
            "Street": _street(s["name"]),
            "Road class": _road_class(s["functional_class"]),
            "What changed": s["cause"].fillna("").astype(str),
            "Stress in A": s["stress_a"].fillna("-").astype(str),
            "Stress in B": s["stress_b"].fillna("-").astype(str),
            "Length (m)": s["length_m"].astype(float),
            "Tag changes": s["tag_diff"].fillna("").astype(str)})
        title = f"Segments whose stress changed ({n}" + (f", first {rows})" if n > rows else ")")
        out.append((title, _style(df, {"OSM way": _way_link, "Length (m)": "{:,.1f}"})))
    return out


def campaign_ranking(table: Any, top: int | None = None) -> Any:
    """A campaign's places by overall score (:func:`pna_helpers.campaigns.ranking`) for
    reading: rank, place, the overall and main category scores (0-100, 2 decimals; "n/a"
    where a place has no destination of the kind), population and status; failed places
    last, without a rank.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`pna_helpers.campaigns.results_table` (or its :func:`~pna_helpers.campaigns.
        ranking`).
    top : int or None
        Only the first ``top`` places (default None: all).

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Rank``, ``Place``, one ``<Score> (0-100)`` column per main score present,
        ``Population`` and ``Status``.
    """
    import pandas as pd

    from pna_helpers.campaigns import ranking
    from pna_helpers.results import MAIN_SCORES

    r = ranking(table, top)
    df = pd.DataFrame({
        "Rank": [str(int(v)) if pd.notna(v) else "" for v in r["rank"]],
        "Place": r["place"].astype(str)})
    score_cols = []
    for sid in MAIN_SCORES:
        col = f"bna_{sid}"
        if col in r.columns:
            name = f"{SCORE_INFO[sid]['label']} (0-100)"
            df[name] = pd.to_numeric(r[col], errors="coerce").to_numpy()
            score_cols.append(name)
    if "population" in r.columns:
        df["Population"] = pd.to_numeric(r["population"], errors="coerce").to_numpy()
    if "status" in r.columns:
        df["Status"] = r["status"].astype(str).to_numpy()
    return _style(df, {**dict.fromkeys(score_cols, "{:.2f}"), "Population": "{:,.0f}"}) \
        .set_table_styles([{"selector": "th", "props": "white-space: nowrap"}], overwrite=False)


def campaign_failures(status: Any) -> Any:
    """A campaign's failures grouped by reason (:class:`~pna_helpers.campaigns.
    CampaignStatus` ``failures``), every place named and the log excerpt in full.

    Parameters
    ----------
    status : CampaignStatus
        As :func:`pna_helpers.campaigns.dashboard` returns.

    Returns
    -------
    pandas.io.formats.style.Styler
        Columns ``Reason``, ``Places failed``, ``Places`` and ``Last lines of the log``
        (kept on their lines); no rows when nothing failed.
    """
    import pandas as pd

    df = pd.DataFrame([{"Reason": g["reason"], "Places failed": int(g["count"]),
                        "Places": ", ".join(g["places"]),
                        "Last lines of the log": g.get("log_excerpt") or ""}
                       for g in status.failures],
                      columns=["Reason", "Places failed", "Places", "Last lines of the log"])
    # a class selector beats the table-wide "td" rule of _style (an id on each cell does not)
    return _style(df).set_table_styles([{
        "selector": "td.col3", "props": "white-space: pre-wrap; font-family: monospace; "
                                        "font-size: 90%; min-width: 40em"}], overwrite=False)
