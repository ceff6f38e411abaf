"""Tables as a planner reads them in notebooks and reports: human column names with units,
integer counts, local times to the second, "n/a" (not 0) where a place has no destination of
a kind, nothing truncated. Each function returns a pandas ``Styler`` (displayed as HTML,
values escaped) built from the plain DataFrames of :mod:`pna_helpers.results` / ``jobs``.
"""

from __future__ import annotations

from typing import Any

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


def _style(df: Any, fmt: dict[str, str] | None = None) -> Any:
    return (df.style.format(fmt or {}, na_rep="n/a", escape="html")
            .hide(axis="index")
            .set_table_styles([{"selector": "th", "props": "text-align: left"},
                               {"selector": "td", "props": "text-align: left; "
                                                         "white-space: normal"}]))


def not_applicable(res: Any) -> set[str]:
    """Score ids that do not apply: the run found no destination of their kind.

    Destination counts come from ``run.json``; an official export (no counts) has its
    destination files counted instead. Employment does not apply to a PNA run outside the
    United States (no jobs data), US mode decided as the engine does
    (:attr:`~pna_helpers.results.Results.is_us`, i.e. ``Params.is_us``).

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
