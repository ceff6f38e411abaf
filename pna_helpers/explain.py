"""Explain a score change: why did a place's BNA move between two result sets?

>>> ex = explain("outputs/results/city-2025", "outputs/results/city-2026")   # doctest: +SKIP
>>> ex.contributions            # groups x scores, summing to the change      # doctest: +SKIP
>>> print(ex.summary())                                                        # doctest: +SKIP

A and B are two result sets of the same place (two years, two OSM extracts, two engine
versions, two methodology profiles, a scenario against its baseline, or ours against an
official export). The change of the overall score and of each category score is split into
contributions of input groups (:data:`GROUPS`):

* ``network`` - the OSM ways and their tags (the ``--osm`` file and scenario tag edits);
* ``destinations`` - the destination features (taken from the other OSM file with the
  engine's ``destinations_osm`` parameter, so the network and the destinations of one file
  can be swapped separately);
* ``population`` - census blocks / population and jobs;
* ``boundary`` - the place boundary;
* ``methodology`` - the methodology profile, each quirk, and the other parameters (speed
  defaults, trip distance, ...).

The engine re-runs with A's inputs and B's inputs swapped group by group (the inputs are
recorded in ``run.json``); each group's contribution is its Shapley value, averaged over the
orders in which the groups can be swapped, so the contributions add up exactly to the change,
and swapping A and B negates them. Within ``methodology`` every quirk that differs is a player
of its own (Owen value: the quirks' parts add up to the methodology contribution). Groups whose
inputs are identical contribute 0 and cost no run. When the recorded scores differ from this
engine's re-computation (another engine version), the difference is the ``engine``
contribution. When the inputs are not available (an official export has no ``run.json``, or a
file is not on this machine), the change is reported as ``unexplained`` and only what the
outputs allow is shown: stress changes of segments, low-stress reach of blocks, destinations
added and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import html as _html
import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pna_engine import remote
from pna_engine.errors import InputError
from pna_engine.params import QUIRK_CODES
from pna_helpers.display import points_text
from pna_helpers.results import MAIN_SCORES, SCORE_INFO, Results, load_results

#: Input groups, in display order.
GROUPS: tuple[str, ...] = ("network", "destinations", "population", "boundary", "methodology")
GROUP_LABELS: dict[str, str] = {
    "network": "Network (OSM ways and tags)",
    "destinations": "Destinations",
    "population": "Population and jobs",
    "boundary": "Boundary",
    "methodology": "Methodology and parameters",
    "engine": "Engine version (recorded vs re-computed)",
    "unexplained": "Not explained (inputs not available)",
}
#: Params fields of each group (``destinations`` is the effective destinations file).
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    "network": ("osm", "way_tag_edits"),
    "destinations": ("_destinations",),
    "population": ("population", "jobs", "worldpop_year", "lodes_year", "block_size",
                   "block_population"),
    "boundary": ("boundary",),
    "methodology": ("methodology", "quirks", "country", "state", "state_fips", "city_fips",
                    "city_speed_limit", "state_speed_limit", "max_trip_distance",
                    "boundary_buffer"),
}
_FILE_FIELDS = ("osm", "_destinations", "population", "boundary")
#: Segment attributes whose change explains a stress change, in order of precedence.
CAUSE_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bike infrastructure", ("ft_bike_infra", "tf_bike_infra", "ft_bike_infra_width",
                             "tf_bike_infra_width")),
    ("speed", ("speed_limit",)),
    ("lanes", ("ft_lanes", "tf_lanes")),
    ("parking", ("ft_park", "tf_park")),
    ("one-way", ("one_way_car", "one_way")),
    ("functional class", ("functional_class",)),
    ("width", ("width_ft",)),
)
STRESS_COLUMNS = ("ft_seg_stress", "tf_seg_stress", "ft_int_stress", "tf_int_stress")
#: Map colours of segment causes.
#: Fill opacity of the blocks on :meth:`Explanation.map` (the legend's swatches use it too).
BLOCK_OPACITY = 0.6

CAUSE_COLORS: dict[str, str] = {
    "new way": "#1b9e77", "removed way": "#d95f02", "bike infrastructure": "#7570b3",
    "speed": "#e7298a", "lanes": "#66a61e", "parking": "#e6ab02", "one-way": "#a6761d",
    "functional class": "#666666", "width": "#1f78b4", "geometry": "#fb9a99",
    "crossing": "#b15928", "clipped (boundary)": "#cab2d6", "other": "#999999",
}

#: Engine runs already made in this process: parameters key -> score vector.
_RUNS: dict[str, np.ndarray] = {}
#: Decimals of :meth:`Explanation.table` (score points).
TABLE_DECIMALS = 3
#: Imported tables of the last distinct imports (input and import parameters -> RunState).
_IMPORTS: dict[str, Any] = {}
_MAX_IMPORTS = 2


# --------------------------------------------------------------------------- inputs
def _file_key(path: str | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return str(path)
    return f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"


_SHA: dict[str, str] = {}


def _sha(path: str | None) -> str | None:
    """Content hash of a local file (cached by path, size and mtime); URLs stay as they are."""
    if not path:
        return None
    key = _file_key(path)
    if key is None or not Path(path).exists():
        return str(path)
    if key not in _SHA:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA[key] = h.hexdigest()
    return _SHA[key]


def _available(v: str | None) -> bool:
    return bool(v) and (remote.is_remote(str(v)) or Path(v).exists())


def side_inputs(res: Results) -> tuple[dict[str, Any] | None, list[str]]:
    """Engine parameters of a result set with local input paths, or None and the reasons
    its inputs are not available.

    Each input is taken from the run's parameters, else from the path recorded in
    ``run.json`` ``inputs``, whichever is a URL or exists on this machine.

    Parameters
    ----------
    res : Results
        A loaded result set.

    Returns
    -------
    tuple of (dict or None, list of str)
        The ``run.json`` parameters (plus ``_destinations``, the effective destinations
        file) and ``[]``; or None and one reason per missing input (or for no ``run.json``).
    """
    run = res.run
    if not run or "parameters" not in run:
        return None, [f"{res.name} has no run.json (an official or other tool's export): "
                      "its inputs are unknown"]
    p = dict(run["parameters"])
    used = run.get("inputs") or {}
    missing: list[str] = []
    for key in ("boundary", "osm", "population", "destinations_osm"):
        rec = (used.get(key) or {}).get("path")
        given = p.get(key)
        if not given and not rec:  # e.g. the synthetic population grid
            continue
        for cand in (given, rec):
            if _available(cand):
                p[key] = cand
                break
        else:
            missing.append(f"{res.name}: {key} input {given or rec} is not on this machine")
    jobs = list(p.get("jobs") or [])
    if not jobs:
        jobs = [v["path"] for k, v in sorted(used.items()) if k.startswith("jobs") and v.get("path")]
    for j in jobs:
        if not _available(j):
            missing.append(f"{res.name}: jobs input {j} is not on this machine")
    p["jobs"] = jobs
    p["_destinations"] = p.get("destinations_osm") or p.get("osm")
    p["way_tag_edits"] = {str(k): v for k, v in (p.get("way_tag_edits") or {}).items()}
    return (None, missing) if missing else (p, [])


def _group_key(p: dict[str, Any], group: str) -> str:
    vals = {}
    for f in GROUP_FIELDS[group]:
        v = p.get(f)
        if f in _FILE_FIELDS:
            v = _sha(v)
        elif f == "jobs":
            v = sorted(_sha(j) or "" for j in (v or []))
        vals[f] = v
    if group == "methodology":
        vals.pop("methodology", None)  # the label follows the quirks
    return json.dumps(vals, sort_keys=True, default=str)


# --------------------------------------------------------------------------- engine runs
def _scores_vector(state: Any) -> np.ndarray:
    import pandas as pd

    df = state.scores.overall_scores
    vals = pd.to_numeric(df["score_normalized"], errors="coerce")
    vals = vals.where(vals.notna(), pd.to_numeric(df["score_original"], errors="coerce"))
    s = pd.Series(vals.to_numpy(dtype=float), index=df["score_id"].astype(str))
    return np.array([float(s.get(i, np.nan)) for i in MAIN_SCORES])


def _run_key(p: dict[str, Any]) -> str:
    d = {k: v for k, v in p.items() if k not in ("output", "place", "workers", "cache_dir")}
    for f in ("osm", "destinations_osm", "population", "boundary"):
        d[f] = _file_key(d.get(f))
    d["jobs"] = [_file_key(j) for j in d.get("jobs") or []]
    return json.dumps(d, sort_keys=True, default=str)


def run_scores(p: dict[str, Any], workers: int | None = None) -> np.ndarray:
    """Main scores (:data:`~pna_helpers.results.MAIN_SCORES`) of an in-process engine run
    with parameters ``p`` (cached for the process; nothing is written).

    The phases run in-process up to ``scores``. The imported tables are kept for the last
    few distinct imports (quirks and the other methodology switches act after the import),
    so re-runs that differ only in them skip reading the OSM file.

    Parameters
    ----------
    p : dict
        Engine parameters as :func:`side_inputs` gives them (keys starting with ``_`` are
        ignored; input files are keyed by path, size and modification time).
    workers : int or None, optional
        Worker processes; None keeps ``p``'s. Not part of the cache key.

    Returns
    -------
    numpy.ndarray
        One value per main score, in :data:`~pna_helpers.results.MAIN_SCORES` order
        (normalised score, else the original; NaN when missing): a copy of the cached array,
        the caller's to change.
    """
    import copy

    from pna_engine import PHASES, pipeline
    from pna_engine.params import Params, Quirks
    from pna_engine.state import RunState

    p = {k: v for k, v in p.items() if not k.startswith("_")}
    key = _run_key(p)
    if key in _RUNS:
        return _RUNS[key].copy()
    known = set(Params.__dataclass_fields__)
    q = dict(p.get("quirks") or {})
    args = {k: v for k, v in p.items() if k in known}
    args.update(output=tempfile.gettempdir(), quirks=Quirks(**q) if q else None,
                way_tag_edits={int(k): v for k, v in (p.get("way_tag_edits") or {}).items()})
    if workers is not None:
        args["workers"] = workers
    params = Params(**args)
    ikey = json.dumps({k: v for k, v in json.loads(key).items()
                       if k not in ("quirks", "methodology")}, sort_keys=True)
    if ikey in _IMPORTS:
        state = copy.deepcopy(_IMPORTS[ikey])
        state.params = params
    else:
        state = RunState(params=params, staging=Path(tempfile.gettempdir()))
        pipeline.PHASE_FUNCTIONS["import"](state)
        _IMPORTS[ikey] = copy.deepcopy(state)
        while len(_IMPORTS) > _MAX_IMPORTS:
            _IMPORTS.pop(next(iter(_IMPORTS)))
    for name in PHASES[1:PHASES.index("scores") + 1]:
        pipeline.PHASE_FUNCTIONS[name](state)
    vec = _scores_vector(state)
    _RUNS[key] = vec
    return vec.copy()


# --------------------------------------------------------------------------- result
@dataclass
class Explanation:
    """Why the scores moved from ``a`` to ``b``: see the module docstring.

    Attributes
    ----------
    a, b : Results
    scores : DataFrame
        Main scores (rows: score ids) of A and B and the change.
    contributions : DataFrame
        Rows: groups (plus ``engine`` / ``unexplained`` when needed), columns: score ids;
        each column sums to the change.
    quirks : DataFrame or None
        Per-quirk part of the methodology contribution (rows: quirk names + ``parameters``).
    unavailable : list of str
        Why some inputs could not be swapped (then the change is ``unexplained``).
    segments : GeoDataFrame
        Segments whose stress changed, with ``cause`` and the OSM ``tag_diff``.
    blocks : GeoDataFrame
        Blocks with their overall score and low-stress reach in A and B.
    destinations : DataFrame
        Destinations added / removed per category.
    top_ways : DataFrame
        OSM ways ranked by their own (leave-one-out) contribution to the overall score.
    """

    a: Results
    b: Results
    scores: Any
    contributions: Any
    exact: bool = True
    quirks: Any = None
    unavailable: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    segments: Any = None
    blocks: Any = None
    destinations: Any = None
    top_ways: Any = None
    population: dict[str, Any] = field(default_factory=dict)
    boundary: dict[str, Any] = field(default_factory=dict)
    runs: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    # ---- numbers
    @property
    def total_change(self) -> float:
        """Change of the overall score from A to B, in points (recorded scores).

        Returns
        -------
        float
        """
        return float(self.scores.loc["overall_score", "change"])

    def table(self, score: str | None = None) -> Any:
        """Contributions (score points) with labels; one column per main score, or ``score``
        only; the last row is the total change.

        Parameters
        ----------
        score : str or None, optional
            A main score id (e.g. ``"overall_score"``); None (default): every main score.

        Returns
        -------
        pandas.DataFrame
            Rows: group labels (:data:`GROUP_LABELS`) and ``Total change``; columns: score
            labels. Rounded to :data:`TABLE_DECIMALS` decimals (with or without ``score``).
        """
        import pandas as pd

        df = self.contributions.copy()
        df.loc["total"] = self.scores["change"].reindex(df.columns).to_numpy()
        df.index = [GROUP_LABELS.get(i, "Total change" if i == "total" else i) for i in df.index]
        df.columns = [SCORE_INFO.get(c, {}).get("label", c) for c in df.columns]
        df.index.name = "contribution"
        if score is not None:
            df = df[[SCORE_INFO.get(score, {}).get("label", score)]]
        return pd.DataFrame(df).round(TABLE_DECIMALS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``total_change``, ``contributions`` (overall), ``categories`` (the same
        per category), ``quirks``, ``unavailable``, details.

        Returns
        -------
        dict
            Also ``a``, ``b``, ``before``, ``after``, ``exact``, ``differing_groups``,
            ``destinations``, ``top_ways``, ``segments_changed`` (count per cause),
            ``population``, ``boundary``, ``engine_runs``, ``seconds``, ``notes`` and
            ``summary``; NaN as None.
        """

        def num(x: Any) -> float | None:
            x = float(x)
            return None if math.isnan(x) else round(x, 6)

        def part(sid: str) -> dict[str, Any]:
            return {"before": num(self.scores.loc[sid, "a"]), "after": num(self.scores.loc[sid, "b"]),
                    "total_change": num(self.scores.loc[sid, "change"]),
                    "contributions": {g: num(self.contributions.loc[g, sid])
                                      for g in self.contributions.index}}

        out: dict[str, Any] = {"a": self.a.name, "b": self.b.name, **part("overall_score")}
        out["categories"] = {sid: part(sid) for sid in MAIN_SCORES if sid != "overall_score"}
        out["exact"] = self.exact
        out["differing_groups"] = list(self.differing)
        out["unavailable"] = list(self.unavailable)
        if self.quirks is not None:
            out["quirks"] = {q: num(self.quirks.loc[q, "overall_score"]) for q in self.quirks.index}
        if self.destinations is not None and len(self.destinations):
            out["destinations"] = self.destinations.to_dict(orient="records")
        if self.top_ways is not None and len(self.top_ways):
            out["top_ways"] = [{k: (num(v) if isinstance(v, float) else v) for k, v in r.items()}
                               for r in self.top_ways.to_dict(orient="records")]
        if self.segments is not None:
            out["segments_changed"] = self.segments["cause"].value_counts().to_dict()
        out["population"] = self.population
        out["boundary"] = self.boundary
        out["engine_runs"] = self.runs
        out["seconds"] = round(self.seconds, 2)
        out["notes"] = list(self.notes)
        out["summary"] = self.summary()
        return out

    # ---- words
    def summary(self, score: str = "overall_score") -> str:
        """Plain-language summary of the change of ``score``.

        Parameters
        ----------
        score : str, optional
            A main score id (default ``"overall_score"``).

        Returns
        -------
        str
            One sentence: the change, then each group's contribution of at least 0.005
            points with what changed in it.
        """
        label = SCORE_INFO.get(score, {}).get("label", score)
        a, b = self.scores.loc[score, "a"], self.scores.loc[score, "b"]
        total = self.scores.loc[score, "change"]
        head = f"{label} score {points_text(total)} points ({a:.2f} -> {b:.2f})"
        parts = []
        contrib = self.contributions[score]
        for g in contrib.index:
            v = float(contrib[g])
            if abs(v) < 0.005:
                continue
            parts.append(f"{points_text(v)} from {self._group_words(g)}")
        if not parts:
            return head + ": no input group moved it." if abs(total) < 0.005 else head + "."
        return head + ": " + "; ".join(parts) + "."

    def _group_words(self, g: str) -> str:
        if g == "network" and self.segments is not None and len(self.segments):
            seg = self.segments[self.segments["cause"] != "clipped (boundary)"]
            ways = seg.dropna(subset=["osm_id"]).drop_duplicates("osm_id")
            counts = ways["cause"].value_counts()
            bits = [f"{n} {c}{'s' if n > 1 else ''}" if c in ("new way", "removed way") else
                    f"{n} way{'s' if n > 1 else ''} with {c} changes"
                    for c, n in counts.head(3).items()]
            lead = ways
            if self.top_ways is not None and len(self.top_ways):
                lead = self.top_ways
            names = [str(n) for n in lead.get("name", []) if isinstance(n, str) and n][:3]
            where = f" on {', '.join(dict.fromkeys(names))}" if names else ""
            return ("the network (" + ", ".join(bits) + where + ")") if bits else "the network"
        if g == "destinations" and self.destinations is not None and len(self.destinations):
            d = self.destinations
            bits = [f"{r.added:+d} {r.category}" if r.added and not r.removed else
                    f"+{r.added}/-{r.removed} {r.category}"
                    for r in d.itertuples() if r.added or r.removed]
            bits = [b.replace("+-", "-") for b in bits]
            return "destinations (" + ", ".join(bits[:4]) + ")" if bits else "destinations"
        if g == "population" and self.population.get("a") is not None:
            return (f"population and jobs (population {self.population['a']:,.0f} -> "
                    f"{self.population['b']:,.0f})")
        if g == "boundary" and self.boundary.get("a_km2") is not None:
            return (f"the boundary ({self.boundary['a_km2']:.2f} -> "
                    f"{self.boundary['b_km2']:.2f} km²)")
        if g == "methodology" and self.quirks is not None:
            top = self.quirks["overall_score"].abs().sort_values(ascending=False)
            named = [f"{q} {points_text(self.quirks.loc[q, 'overall_score'])}" for q in top.index[:3]
                     if abs(self.quirks.loc[q, "overall_score"]) >= 0.005]
            return "methodology" + (f" ({', '.join(named)})" if named else "")
        return GROUP_LABELS.get(g, g).lower()

    # ---- pictures
    def waterfall(self, score: str = "overall_score") -> Any:
        """Waterfall chart (matplotlib Figure): A's score, each contribution, B's score.

        Parameters
        ----------
        score : str, optional
            A main score id (default ``"overall_score"``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from pna_helpers.charts import _plt

        plt = _plt()
        c = self.contributions[score]
        a, b = float(self.scores.loc[score, "a"]), float(self.scores.loc[score, "b"])
        labels = [str(self.a.name)] + [GROUP_LABELS.get(g, g) for g in c.index] + [str(self.b.name)]
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.4))
        level = a
        ys = list(range(len(labels)))[::-1]
        ax.barh(ys[0], a, color="#999999")
        for y, g in zip(ys[1:-1], c.index):
            v = float(c[g])
            ax.barh(y, v, left=level, color="#2166ac" if v >= 0 else "#b2182b")
            ax.text(max(level, level + v), y, f" {points_text(v)}", va="center", fontsize=9)
            level += v
        ax.barh(ys[-1], b, color="#555555")
        ax.text(a, ys[0], f" {a:.2f}", va="center", fontsize=9)
        ax.text(b, ys[-1], f" {b:.2f}", va="center", fontsize=9)
        ax.set_yticks(ys, labels)
        lo = min(a, b, level) - max(2.0, 0.1 * abs(b - a))
        ax.set_xlim(max(0.0, min(lo, min(a, b) * 0.9)), max(a, b) + max(2.0, abs(b - a)) * 1.2)
        label = SCORE_INFO.get(score, {}).get("label", score)
        ax.set_xlabel(f"{label} score (0-100)")
        ax.set_title(f"{label}: {points_text(b - a)} points, by input group")
        fig.tight_layout()
        return fig

    def map(self) -> Any:
        """Offline map: blocks coloured by their overall score change, changed segments
        coloured by cause (tooltips: way, name, cause, tag changes, stress before/after).

        Returns
        -------
        pna_helpers.maps.OfflineMap
            A folium map (B's boundary when there are no blocks or segments).
        """
        import folium

        from pna_helpers import maps

        blocks = self.blocks
        layers = [g for g in (blocks, self.segments) if g is not None and len(g)]
        m = maps.new_map(*layers) if layers else maps.new_map(self.b.boundary)
        if blocks is not None and len(blocks):
            fields = ["geoid20", "overall_delta", "overall_a", "overall_b", "low_blocks_delta",
                      "access"]
            data = maps.compact_geojson(blocks, fields, tolerance_m=0.5)
            fg = folium.FeatureGroup(name="Blocks: change of overall score")
            gj = folium.GeoJson(data, style_function=lambda f: {
                "fillColor": maps._delta_color(f["properties"].get("overall_delta")),
                "color": "#555", "weight": 0.5, "fillOpacity": BLOCK_OPACITY})
            folium.GeoJsonTooltip(fields=maps._present(data, fields)).add_to(gj)
            gj.add_to(fg)
            fg.add_to(m)
        seg = self.segments
        if seg is not None and len(seg):
            show = seg.copy()
            for col in ("name", "cause", "tag_diff", "stress_a", "stress_b"):
                show[col] = show[col].map(lambda v: _html.escape(str(v)) if v is not None and
                                          v == v else "-")
            fields = ["osm_id", "name", "cause", "tag_diff", "stress_a", "stress_b"]
            data = maps.compact_geojson(show, fields, tolerance_m=0)
            folium.GeoJson(data, name="Segments whose stress changed, by cause",
                           style_function=lambda f: {
                               "color": CAUSE_COLORS.get(f["properties"].get("cause"), "#999"),
                               "weight": 6, "opacity": 0.9},
                           tooltip=folium.GeoJsonTooltip(fields=maps._present(data, fields))
                           ).add_to(m)
        causes = list(dict.fromkeys(seg["cause"])) if seg is not None and len(seg) else []
        items = [(CAUSE_COLORS.get(c, "#999"), f"segment: {c}") for c in causes]
        items += [(c, f"block: {lbl}", BLOCK_OPACITY)  # swatches as see-through as the blocks
                  for c, lbl in zip(maps.DELTA_COLORS, maps.DELTA_LABELS)]
        maps.add_legend(m, "Segments by cause, blocks by overall score change", items)
        folium.LayerControl(collapsed=False).add_to(m)
        return m

    def html_section(self) -> str:
        """The explanation as an HTML section (tables, waterfall as inline SVG, summary);
        every name from the data is escaped.

        Returns
        -------
        str
            A ``<section class='pna-explain'>`` element (the first 50 changed segments).
        """
        import io

        buf = io.StringIO()
        fig = self.waterfall()
        fig.savefig(buf, format="svg")
        from pna_helpers.charts import _plt

        _plt().close(fig)
        svg = buf.getvalue()
        svg = svg[svg.find("<svg"):]
        e = _html.escape
        parts = [f"<section class='pna-explain'><h2>Why the score changed: {e(self.a.name)} "
                 f"&rarr; {e(self.b.name)}</h2>", f"<p class='summary'>{e(self.summary())}</p>"]
        for cat in MAIN_SCORES[1:]:
            if abs(float(self.scores.loc[cat, "change"])) >= 0.005:
                parts.append(f"<p class='summary-cat'>{e(self.summary(cat))}</p>")
        if self.unavailable:
            parts.append("<p class='unavailable'><b>Not re-computable:</b> " +
                         "; ".join(e(u) for u in self.unavailable) + "</p>")
        tab = self.table()
        parts.append("<h3>Contributions (score points)</h3>" + _table_html(tab, tab.columns))
        parts.append(svg)
        if self.quirks is not None:
            q = self.quirks.copy()
            q.columns = [SCORE_INFO.get(c, {}).get("label", c) for c in q.columns]
            parts.append("<h3>Methodology, quirk by quirk</h3>" + _table_html(q, q.columns))
        if self.top_ways is not None and len(self.top_ways):
            parts.append("<h3>Ways ranked by their own contribution (leave-one-out)</h3>" +
                         _table_html(self.top_ways, ["overall_points"]))
        if self.segments is not None and len(self.segments):
            cols = ["osm_id", "name", "functional_class", "cause", "tag_diff", "stress_a",
                    "stress_b"]
            seg = self.segments
            seg = seg.assign(_clip=seg["cause"] == "clipped (boundary)").sort_values(
                ["_clip", "cause"], kind="stable")
            seg = seg[[c for c in cols if c in seg.columns]].head(50).reset_index(drop=True)
            parts.append(f"<h3>Segments whose stress changed ({len(self.segments)}, first 50)</h3>"
                         + _table_html(seg))
        if self.destinations is not None and len(self.destinations):
            d = self.destinations
            d = d[(d["added"] > 0) | (d["removed"] > 0)].set_index("category")
            if len(d):
                parts.append("<h3>Destinations added and removed</h3>" + _table_html(d))
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in self.notes) + "</ul>")
        parts.append("</section>")
        return "\n".join(parts)

    def report(self, out_html: str | Path) -> Path:
        """A standalone HTML report: the :meth:`html_section` and the :meth:`map` (offline).

        Parameters
        ----------
        out_html : str or Path
            The HTML file to write (atomically).

        Returns
        -------
        Path
            ``out_html``.
        """
        from pna_engine.atomic import write_text
        from pna_helpers import maps
        from pna_helpers._html import page as html_page

        m = self.map()
        doc = _html.escape(maps.inline_assets(m.get_root().render()))
        page = html_page(
            f"{self.a.name} -> {self.b.name}: why the score changed",
            self.html_section() + "<h3>Map: changed segments by cause, blocks by change</h3>"
            f"<iframe srcdoc=\"{doc}\" style='width:100%;height:600px;border:0'></iframe>",
            style="table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
                  "padding:2px 6px;text-align:right}th:first-child,td:first-child"
                  "{text-align:left}.summary{font-size:1.15em}")
        out = Path(out_html)
        write_text(out, page)
        return out


def _table_html(df: Any, points: Any = ()) -> str:
    """``df`` as an escaped HTML table; the columns in ``points`` (score points) with a sign
    and 2 decimals, other numbers as :func:`_fmt`."""
    e = _html.escape
    head = "<tr><th>" + e(str(df.index.name or "")) + "</th>" + "".join(
        f"<th>{e(str(c))}</th>" for c in df.columns) + "</tr>"
    pts = [c in set(points) for c in df.columns]
    rows = []
    for idx, r in df.iterrows():
        cells = "".join(
            f"<td>{e(points_text(v) if p and isinstance(v, float) and v == v else _fmt(v))}</td>"
            for v, p in zip(r.to_numpy(), pts))
        rows.append(f"<tr><td>{e(str(idx))}</td>{cells}</tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


# --------------------------------------------------------------------------- details
def _low_stress(ways: Any, d: str) -> Any:
    import pandas as pd

    seg = pd.to_numeric(ways[f"{d}_seg_stress"], errors="coerce")
    it = pd.to_numeric(ways[f"{d}_int_stress"], errors="coerce")
    return (seg == 1) & ((it == 1) | it.isna())


def _stress_text(ways: Any) -> Any:
    import pandas as pd

    def t(c: str) -> Any:
        return pd.to_numeric(ways[c], errors="coerce").map(lambda v: "-" if v != v else str(int(v)))

    return ("ft " + t("ft_seg_stress") + "/" + t("ft_int_stress") + ", tf " +
            t("tf_seg_stress") + "/" + t("tf_int_stress"))


def _way_tags(path: str | None, edits: dict[str, Any] | None, ids: set[int]) -> dict[int, dict]:
    """Tags of the given OSM ways (after scenario edits); empty when the file is absent."""
    if not path or not Path(path).exists() or not ids:
        return {}
    import osmium

    out: dict[int, dict[str, str]] = {}
    for o in osmium.FileProcessor(str(path), osmium.osm.WAY):
        if o.id in ids:
            out[o.id] = {t.k: t.v for t in o.tags}
    for k, v in (edits or {}).items():
        if int(k) in out:
            for tag, val in v.items():
                if val is None:
                    out[int(k)].pop(tag, None)
                else:
                    out[int(k)][tag] = str(val)
    return out


def _tag_diff(a: dict[str, str] | None, b: dict[str, str] | None) -> str:
    if a is None and b is None:
        return ""
    if a is None:
        return "new: " + ", ".join(f"{k}={v}" for k, v in sorted((b or {}).items()))[:200]
    if b is None:
        return "removed"
    bits = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            if k not in a:
                bits.append(f"+{k}={b[k]}")
            elif k not in b:
                bits.append(f"-{k}={a[k]}")
            else:
                bits.append(f"{k} {a[k]}->{b[k]}")
    return ", ".join(bits)


def segment_changes(a: Results, b: Results, pa: dict | None = None, pb: dict | None = None
                    ) -> Any:
    """Segments of B (and removed segments of A) whose segment or crossing stress changed,
    each with its ``cause`` (the attribute change that explains it: bike infrastructure,
    speed, lanes, parking, one-way, functional class, width; ``new way`` / ``removed way``;
    ``crossing`` when only the crossing stress moved; ``geometry`` when the way was re-drawn;
    ``other`` = none of these, e.g. a methodology switch) and the OSM tag diff
    (``tag_diff``, when both OSM files are available). GeoDataFrame in EPSG:4326.

    A way that appears or disappears but is in both OSM files is ``clipped (boundary)``.

    Parameters
    ----------
    a, b : Results
        The result sets before and after.
    pa, pb : dict or None, optional
        Their parameters (:func:`side_inputs`), for the OSM files and tag edits of the tag
        diff; None: no tag diff (``tag_diff`` is ``""``).

    Returns
    -------
    geopandas.GeoDataFrame or None
        Columns ``osm_id``, ``name``, ``functional_class``, ``cause``, ``stress_a``,
        ``stress_b``, ``low_a``, ``low_b``, ``length_m``, ``tag_diff``, ordered by cause;
        None when either result set has no ways.
    """
    import geopandas as gpd
    import pandas as pd
    import shapely

    wa, wb = a.ways, b.ways
    if wa is None or wb is None:
        return None
    wa, wb = wa.to_crs(4326), wb.to_crs(4326)

    def keys(w: Any) -> Any:
        g = shapely.set_precision(np.asarray(w.geometry.values), 1e-6)
        return pd.Series([str(i) for i in pd.to_numeric(w["osm_id"], errors="coerce")]) + "|" + \
            pd.Series(shapely.to_wkt(shapely.normalize(g), rounding_precision=6))

    ka, kb = keys(wa), keys(wb)
    ia = pd.Series(np.arange(len(wa)), index=ka.to_numpy())
    ia = ia[~ia.index.duplicated()]
    match = kb.map(ia)
    osm_a = pd.to_numeric(wa["osm_id"], errors="coerce")
    osm_b = pd.to_numeric(wb["osm_id"], errors="coerce")
    known_b = set(osm_b.dropna().astype("int64"))
    # unmatched B segments of an existing way: the nearest A segment of the same way
    mid_a = shapely.line_interpolate_point(np.asarray(wa.geometry.values), 0.5, normalized=True)
    by_way: dict[int, np.ndarray] = {}
    for i, w in enumerate(osm_a.to_numpy()):
        if w == w:
            by_way.setdefault(int(w), []).append(i)  # type: ignore[arg-type]
    geom_b = np.asarray(wb.geometry.values)
    rows = []
    matched_a: set[int] = set()
    for j in range(len(wb)):
        w = osm_b.iloc[j]
        i = match.iloc[j]
        reshaped = False
        if i != i:  # no exact match
            if w == w and int(w) in by_way:
                cand = np.asarray(by_way[int(w)])
                mid = shapely.line_interpolate_point(geom_b[j], 0.5, normalized=True)
                i = int(cand[np.argmin(shapely.distance(mid_a[cand], mid))])
                reshaped = True
            else:
                rows.append((None, j, "new way"))
                continue
        i = int(i)
        matched_a.add(i)
        ra, rb = wa.iloc[i], wb.iloc[j]
        stress_changed = any(_neq(ra.get(c), rb.get(c)) for c in STRESS_COLUMNS)
        if not stress_changed:
            continue
        cause = None
        for name, cols in CAUSE_COLUMNS:
            if any(_neq(ra.get(c), rb.get(c)) for c in cols):
                cause = name
                break
        if cause is None:
            seg_changed = any(_neq(ra.get(c), rb.get(c)) for c in ("ft_seg_stress", "tf_seg_stress"))
            cause = "geometry" if reshaped else ("other" if seg_changed else "crossing")
        rows.append((i, j, cause))
    for i in range(len(wa)):
        w = osm_a.iloc[i]
        if i not in matched_a and (w != w or int(w) not in known_b):
            rows.append((i, None, "removed way"))
    if not rows:
        return gpd.GeoDataFrame({"osm_id": [], "name": [], "functional_class": [], "cause": [],
                                 "tag_diff": [], "stress_a": [], "stress_b": [],
                                 "length_m": []}, geometry=[], crs=4326)
    sa, sb = _stress_text(wa), _stress_text(wb)
    recs = []
    for i, j, cause in rows:
        src = wb.iloc[j] if j is not None else wa.iloc[i]
        recs.append({"osm_id": int(src["osm_id"]) if src["osm_id"] == src["osm_id"] else None,
                     "name": src.get("name"), "functional_class": src.get("functional_class"),
                     "cause": cause, "stress_a": sa.iloc[i] if i is not None else "-",
                     "stress_b": sb.iloc[j] if j is not None else "-",
                     "low_a": bool(_low_stress(wa.iloc[[i]], "ft").iloc[0] or
                                   _low_stress(wa.iloc[[i]], "tf").iloc[0]) if i is not None else False,
                     "low_b": bool(_low_stress(wb.iloc[[j]], "ft").iloc[0] or
                                   _low_stress(wb.iloc[[j]], "tf").iloc[0]) if j is not None else False,
                     "geometry": src.geometry})
    out = gpd.GeoDataFrame(recs, geometry="geometry", crs=4326)
    order = {c: i for i, c in enumerate(["new way", "removed way", *(c for c, _ in CAUSE_COLUMNS),
                                         "geometry", "crossing", "other", "clipped (boundary)"])}
    utm = out.estimate_utm_crs() if len(out) else None
    out["length_m"] = out.geometry.to_crs(utm).length.round(1) if utm is not None else 0.0
    # tag diff from the OSM files; a way that appears or disappears but is in both files
    # was clipped in or out by the boundary
    ids = {int(v) for v in out["osm_id"].dropna()}
    ta = _way_tags((pa or {}).get("osm"), (pa or {}).get("way_tag_edits"), ids)
    tb = _way_tags((pb or {}).get("osm"), (pb or {}).get("way_tag_edits"), ids)
    if ta or tb:
        def key(w: Any) -> int | None:
            return int(w) if w is not None and w == w else None

        out["tag_diff"] = [_tag_diff(ta.get(key(w)), tb.get(key(w))) if key(w) is not None
                           else "" for w in out["osm_id"]]
        both = [key(w) is not None and key(w) in ta and key(w) in tb for w in out["osm_id"]]
        clipped = out["cause"].isin(["new way", "removed way"]).to_numpy() & np.asarray(both)
        out.loc[clipped, "cause"] = "clipped (boundary)"
    else:
        out["tag_diff"] = ""
    # the causes a reader looks for first; boundary clipping last
    out = out.iloc[np.argsort(out["cause"].map(order).fillna(99).to_numpy(), kind="stable")]
    return out.reset_index(drop=True)


def _neq(x: Any, y: Any) -> bool:
    xn = x is None or (isinstance(x, float) and math.isnan(x))
    yn = y is None or (isinstance(y, float) and math.isnan(y))
    if xn or yn:
        return xn != yn
    try:
        return float(x) != float(y)
    except (TypeError, ValueError):
        return str(x) != str(y)


def block_changes(a: Results, b: Results) -> Any:
    """Blocks of B with overall score and low-stress reach (blocks and people reachable on
    the low-stress network) in A and B; ``access`` = gained / lost / mixed / unchanged.

    Parameters
    ----------
    a, b : Results
        The result sets before and after.

    Returns
    -------
    geopandas.GeoDataFrame
        As :func:`pna_helpers.scenario.block_access_changes`, with ``overall_a``,
        ``overall_b`` and ``overall_delta`` for the overall score columns.
    """
    import pandas as pd

    from pna_helpers.scenario import block_access_changes

    out = block_access_changes(a, b)
    return out.rename(columns={"overall_before": "overall_a", "overall_after": "overall_b",
                               "delta": "overall_delta"}).pipe(lambda d: d.assign(
                                   overall_delta=pd.to_numeric(d["overall_delta"])))


def destination_changes(a: Results, b: Results) -> Any:
    """Per category: destinations in A and B, added and removed (matched by OSM id, else by
    position).

    Position is a representative point rounded to 5 decimals of degrees; it is used for a
    set whose ``osm_id`` is missing or incomplete.

    Parameters
    ----------
    a, b : Results
        The result sets before and after.

    Returns
    -------
    pandas.DataFrame
        Columns ``category``, ``a``, ``b``, ``added``, ``removed``; categories with no
        destinations layer in either set are left out.
    """
    import pandas as pd

    from pna_engine.destinations import CATEGORIES

    rows = []
    for cat in CATEGORIES:
        da, db = a.destinations(cat), b.destinations(cat)
        if da is None and db is None:
            continue

        def ids(d: Any) -> set[str]:
            if d is None or not len(d):
                return set()
            if "osm_id" in d.columns and d["osm_id"].notna().all():
                return {str(v) for v in d["osm_id"]}
            c = d.to_crs(4326).geometry.representative_point()
            return {f"{x:.5f},{y:.5f}" for x, y in zip(c.x, c.y)}

        sa, sb = ids(da), ids(db)
        rows.append({"category": cat, "a": len(sa), "b": len(sb), "added": len(sb - sa),
                     "removed": len(sa - sb)})
    return pd.DataFrame(rows, columns=["category", "a", "b", "added", "removed"])


def _population(res: Results) -> float | None:
    import pandas as pd

    bl = res.blocks
    if bl is None or "pop20" not in bl.columns:
        return None
    return float(pd.to_numeric(bl["pop20"], errors="coerce").sum())


def _boundary_km2(res: Results) -> float | None:
    bnd = res.boundary
    if bnd is None or not len(bnd):
        return None
    return float(bnd.to_crs(bnd.estimate_utm_crs()).area.sum() / 1e6)


# --------------------------------------------------------------------------- the game
def _coalition(pa: dict, pb: dict, groups: set[str], quirk_players: dict[str, list[str]],
               coalition: frozenset[str]) -> dict[str, Any]:
    """Parameters with B's inputs for the groups (and quirks) in ``coalition``, A's others."""
    p = dict(pa)
    for g in groups:
        if g == "methodology" or g not in coalition:
            continue
        for f in GROUP_FIELDS[g]:
            p[f] = pb.get(f)
    if "methodology" in groups:
        q = dict(pa.get("quirks") or {})
        for player, members in quirk_players.items():
            if player not in coalition:
                continue
            for name in members:
                if name == "parameters":
                    for f in GROUP_FIELDS["methodology"]:
                        if f not in ("quirks", "methodology"):
                            p[f] = pb.get(f)
                else:
                    q[name] = (pb.get("quirks") or {}).get(name, True)
        p["quirks"] = q
    dest = p.get("_destinations")
    # the network's own file gives the destinations unless another was swapped in
    p["destinations_osm"] = None if (dest == p.get("osm") and not p.get("way_tag_edits")) \
        else dest
    return p


def _quirk_players(pa: dict, pb: dict) -> dict[str, list[str]]:
    qa, qb = pa.get("quirks") or {}, pb.get("quirks") or {}
    players = {n: [n] for n in sorted(set(qa) | set(qb), key=str)
               if bool(qa.get(n, True)) != bool(qb.get(n, True))}
    others = [f for f in GROUP_FIELDS["methodology"] if f not in ("quirks", "methodology")]
    if any(json.dumps(pa.get(f), default=str) != json.dumps(pb.get(f), default=str)
           for f in others):
        players["parameters"] = ["parameters"]
    return players


def explain(a: Any, b: Any, *, top_ways: int = 8, workers: int | None = None,
            quirk_detail: bool = True, progress: Callable[[str], None] | None = None
            ) -> Explanation:
    """Explain the change of the scores from result set ``a`` to ``b``.

    Parameters
    ----------
    a, b : str, Path or Results
        Two result sets of the same place (anything :func:`~pna_helpers.results.load_results`
        accepts).
    top_ways : int
        Leave-one-out re-scoring of this many leading changed ways (0: skip).
    workers : int, optional
        Connectivity worker processes of the engine re-runs (default: A's setting).
    quirk_detail : bool
        Split the methodology contribution quirk by quirk.
    progress : callable, optional
        Called with a short message before each step.

    Returns
    -------
    Explanation
    """
    import pandas as pd

    t0 = time.perf_counter()
    say = progress or (lambda _m: None)
    ra, rb = load_results(a), load_results(b)
    if ra.name == rb.name:
        ra = load_results(ra.folder if ra.folder else a, name=f"{ra.name} (A)")
        rb = load_results(rb.folder if rb.folder else b, name=f"{rb.name} (B)")
    sa, sb = ra.scores(), rb.scores()
    rec_a = np.array([float(sa.get(i, np.nan)) for i in MAIN_SCORES])
    rec_b = np.array([float(sb.get(i, np.nan)) for i in MAIN_SCORES])
    scores = pd.DataFrame({"a": rec_a, "b": rec_b, "change": rec_b - rec_a}, index=list(MAIN_SCORES))
    pa, why_a = side_inputs(ra)
    pb, why_b = side_inputs(rb)
    unavailable = why_a + why_b
    ex = Explanation(a=ra, b=rb, scores=scores, contributions=None, unavailable=unavailable)
    runs_before = len(_RUNS)
    if pa is not None and pb is not None:
        differing = [g for g in GROUPS if _group_key(pa, g) != _group_key(pb, g)]
        ex.differing = differing
        qp = _quirk_players(pa, pb) if "methodology" in differing else {}
        if "methodology" in differing and not (quirk_detail and qp):
            qp = {"methodology": [m for ms in qp.values() for m in ms]}
        unions: dict[str, list[str]] = {g: [g] for g in differing if g != "methodology"}
        if "methodology" in differing:
            unions["methodology"] = list(qp)
        wk = workers if workers is not None else pa.get("workers")
        groups = set(differing)

        def value(coalition: frozenset[str]) -> np.ndarray:
            say(f"engine run with B's {', '.join(sorted(coalition)) or 'nothing'}")
            return run_scores(_coalition(pa, pb, groups, qp, coalition), wk)

        if len(unions.get("methodology", [])) > 3:
            active, idle = _prune_quirks(unions, value)
            if len(idle) > 1:
                merged = "quirks without effect alone"
                qp[merged] = [m for p in idle for m in qp.pop(p)]
                unions["methodology"] = active + [merged]
        from pna_helpers._shapley import owen_values

        phi, exact = owen_values(unions, value)
        ex.exact = exact
        contrib = {g: sum((phi[p] for p in unions[g]), np.zeros(len(MAIN_SCORES)))
                   for g in unions}
        v0 = value(frozenset())
        vN = value(frozenset(p for m in unions.values() for p in m))
        engine = (rec_b - vN) - (rec_a - v0)
        rows = {g: contrib.get(g, np.zeros(len(MAIN_SCORES))) for g in GROUPS}
        if np.nanmax(np.abs(engine)) > 1e-6:
            rows["engine"] = engine
            ex.notes.append("the recorded scores differ from this engine's re-computation "
                            "(another engine version?): the difference is the engine row")
        ex.contributions = pd.DataFrame(rows, index=list(MAIN_SCORES)).T
        if "methodology" in unions and unions["methodology"] != ["methodology"]:
            qrows = {}
            for p in unions["methodology"]:
                label = " + ".join(f"{n} ({QUIRK_CODES[n]})" if n in QUIRK_CODES else n
                                   for n in qp[p])
                qrows[label] = phi[p]
            ex.quirks = pd.DataFrame(qrows, index=list(MAIN_SCORES)).T
        if not exact:
            ex.notes.append("averaged over sampled orders (too many to enumerate): the "
                            "contributions still add up exactly")
    else:
        ex.contributions = pd.DataFrame({"unexplained": rec_b - rec_a}, index=list(MAIN_SCORES)).T
        ex.notes.append("only the outputs are compared: the change cannot be split by input "
                        "group without both runs' inputs")
    ex.contributions.index.name = "group"
    # details from the outputs
    say("comparing segments, blocks and destinations")
    with contextlib.suppress(InputError):
        ex.segments = segment_changes(ra, rb, pa, pb)
    with contextlib.suppress(InputError, KeyError):
        ex.blocks = block_changes(ra, rb)
    with contextlib.suppress(InputError):
        ex.destinations = destination_changes(ra, rb)
    pop_a, pop_b = _population(ra), _population(rb)
    ex.population = {"a": pop_a, "b": pop_b}
    ka, kb = _boundary_km2(ra), _boundary_km2(rb)
    ex.boundary = {"a_km2": ka, "b_km2": kb}
    if pa is not None and pb is not None and top_ways and "network" in ex.differing:
        ex.top_ways = _leave_one_out(ex, pa, pb, top_ways, workers, say)
    ex.runs = len(_RUNS) - runs_before
    ex.seconds = time.perf_counter() - t0
    return ex


def _prune_quirks(unions: dict[str, list[str]], value: Callable[[frozenset[str]], np.ndarray]
                  ) -> tuple[list[str], list[str]]:
    """Split the methodology players into (active, idle): a quirk is idle when switching it
    alone changes no score, from A's side and from B's side. The caller merges the idle
    ones into one player: far fewer engine runs, and the sums stay exact."""
    players = unions["methodology"]
    others = frozenset(p for g, m in unions.items() if g != "methodology" for p in m)
    full = others | frozenset(players)
    base_a, base_b = value(frozenset()), value(full)
    active, idle = [], []
    for p in players:
        if p == "parameters":
            active.append(p)
            continue
        d1 = value(frozenset({p})) - base_a
        d2 = base_b - value(full - {p})
        if np.nanmax(np.abs(np.r_[d1, d2])) > 1e-9:
            active.append(p)
        else:
            idle.append(p)
    return active, idle


def _low_pairs(a: np.ndarray, b: np.ndarray, mask: np.ndarray, n: int) -> float:
    """Pairs of low-stress segments (``mask``) connected to each other."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(mask.sum()), (a[mask], b[mask])), shape=(n, n))
    lab = connected_components(g, directed=False)[1]
    sz = np.bincount(lab[a[mask]], minlength=n).astype(float)
    return float((sz * (sz - 1) / 2).sum())


def _island_effect(ways_a: Any, ways_b: Any, way: int) -> float:
    """How many pairs of low-stress segments the way's own low-stress segments connect, in
    A or in B (whichever is larger): a cheap proxy of its effect on the scores."""
    import pandas as pd

    from pna_helpers.scenario import _low_stress_edges

    best = 0.0
    for w in (ways_a, ways_b):
        fr = pd.to_numeric(w["intersection_from"], errors="coerce")
        to = pd.to_numeric(w["intersection_to"], errors="coerce")
        ok = (fr.notna() & to.notna()).to_numpy()
        low = _low_stress_edges(w)[ok]
        osm = pd.to_numeric(w["osm_id"], errors="coerce").to_numpy()[ok]
        nodes, inv = np.unique(np.r_[fr[ok].to_numpy(), to[ok].to_numpy()], return_inverse=True)
        a, b = inv[: ok.sum()], inv[ok.sum():]
        mine = low & (osm == way)
        if not mine.any():
            continue

        n = len(nodes)
        best = max(best, _low_pairs(a, b, low, n) - _low_pairs(a, b, low & ~mine, n))
    return best


def _leave_one_out(ex: Explanation, pa: dict, pb: dict, n: int, workers: int | None,
                   say: Callable[[str], None]) -> Any:
    """Own contribution of the leading changed ways to the overall score: B's run with one
    way put back as it was in A (tags restored; a new way removed), or, for a way that B
    removed, A's network without that way (other groups at B's inputs in both cases)."""
    import pandas as pd

    seg = ex.segments
    cols = ["osm_id", "name", "cause", "tag_diff", "segments", "length_m", "overall_points"]
    if seg is None or not len(seg):
        return pd.DataFrame(columns=cols)
    seg = seg[seg["osm_id"].notna() & ~seg["cause"].isin(
        ["crossing", "geometry", "other", "clipped (boundary)"])]
    if not len(seg):
        return pd.DataFrame(columns=cols)
    seg = seg.assign(flipped=(seg["low_a"] != seg["low_b"]).astype(int))
    agg = (seg.groupby("osm_id").agg(name=("name", "first"), cause=("cause", "first"),
                                     tag_diff=("tag_diff", "first"), segments=("cause", "size"),
                                     length_m=("length_m", "sum"), flipped=("flipped", "max"))
           .reset_index())
    # leading candidates: ways whose low-stress status flipped, by how much of the low-stress
    # network they join or split, then the longest
    agg["islands"] = [_island_effect(ex.a.ways, ex.b.ways, int(w)) for w in agg["osm_id"]]
    agg = agg.sort_values(["flipped", "islands", "length_m"], ascending=False).head(n)
    groups = set(ex.differing)
    qp = _quirk_players(pa, pb) if "methodology" in groups else {}
    if qp:
        qp = {"methodology": [m for ms in qp.values() for m in ms]}
    every = frozenset(set(groups) - {"methodology"} | set(qp))
    base_b = _coalition(pa, pb, groups, qp, every)
    base_a = _coalition(pa, pb, groups, qp, every - {"network"})
    ids = {int(w) for w in agg["osm_id"]}
    ta = _way_tags(pa.get("osm"), pa.get("way_tag_edits"), ids)
    tb = _way_tags(pb.get("osm"), pb.get("way_tag_edits"), ids)
    idx = list(MAIN_SCORES).index("overall_score")
    out = []
    for r in agg.itertuples():
        w = int(r.osm_id)
        if w in tb:  # in B: put back A's version (or drop a new way)
            before = ta.get(w)
            revert = ({k: None for k in tb[w]} | dict(before)) if before is not None \
                else {"highway": None}
            base = base_b
            p = dict(base_b)
            p["way_tag_edits"] = {**(pb.get("way_tag_edits") or {}), str(w): revert}
            sign = 1.0
        elif w in ta:  # removed in B: A's network without it
            base = base_a
            p = dict(base_a)
            p["way_tag_edits"] = {**(pa.get("way_tag_edits") or {}), str(w): {"highway": None}}
            sign = -1.0
        else:
            continue
        p["destinations_osm"] = p.get("_destinations")
        say(f"leave-one-out: way {w}")
        v_base = run_scores(base, workers)[idx]
        v_w = run_scores(p, workers)[idx]
        out.append({"osm_id": w, "name": r.name, "cause": r.cause, "tag_diff": r.tag_diff,
                    "segments": int(r.segments), "length_m": round(float(r.length_m), 1),
                    "overall_points": round(float(sign * (v_base - v_w)), 4) + 0.0})
    df = pd.DataFrame(out, columns=cols)
    return df.sort_values("overall_points", key=lambda c: -c.abs()).reset_index(drop=True)


# --------------------------------------------------------------------------- CLI
def register(subparsers: Any) -> None:
    """Add ``pna explain A B [--json] [-o REPORT.html]`` to the ``pna`` command.

    Parameters
    ----------
    subparsers : Any
        The ``add_subparsers()`` object of the ``pna`` parser.
    """
    p = subparsers.add_parser(
        "explain", help="why did the scores change between two result sets of one place",
        description="Split the change of the overall and category scores from result set A "
                    "to B into contributions of input groups (network, destinations, "
                    "population and jobs, boundary, methodology and parameters) by re-running "
                    "the engine with the inputs swapped group by group (Shapley values: they "
                    "add up to the change). A and B: PNA result folders, .zip files, s3:// "
                    "URIs or job ids; an official export (no run.json) is compared by its "
                    "outputs only.")
    p.add_argument("a", metavar="A", help="the earlier result set")
    p.add_argument("b", metavar="B", help="the later result set")
    p.add_argument("--json", action="store_true",
                   help="print JSON: total_change, contributions per group, categories, ...")
    p.add_argument("-o", "--output", default=None, metavar="REPORT.html",
                   help="also write a standalone HTML report (tables, waterfall, map)")
    p.add_argument("--top-ways", type=int, default=8,
                   help="leave-one-out re-scoring of this many leading changed ways "
                        "(default: %(default)s; 0 = skip)")
    p.add_argument("--workers", type=int, default=None,
                   help="connectivity worker processes of the re-runs (default: A's setting)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run_cli)


def run_cli(args: Any) -> int:
    """Entry of ``pna explain``.

    Parameters
    ----------
    args : Any
        The parsed ``pna explain`` arguments.

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    InputError
        A negative ``--top-ways``, or a result set that cannot be loaded.
    """
    import sys

    if args.top_ways < 0:
        raise InputError(f"--top-ways must be >= 0, got {args.top_ways}")
    say = (lambda _m: None) if args.quiet else (
        lambda m: print(f"[pna explain] {m}", file=sys.stderr, flush=True))
    ex = explain(args.a, args.b, top_ways=args.top_ways, workers=args.workers, progress=say)
    out = ex.report(args.output) if args.output else None
    if out is not None and args.json:  # stdout is the JSON alone: the path goes to stderr
        print(f"report: {out}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(ex.to_dict(), indent=1, default=str, ensure_ascii=False))
        return 0
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(ex.summary())
        print()
        print(ex.table().to_string(float_format=points_text))
        if ex.quirks is not None:
            print("\nMethodology, quirk by quirk (overall points):")
            print(ex.quirks["overall_score"].to_string(float_format=points_text))
        if ex.top_ways is not None and len(ex.top_ways):
            print("\nWays by their own contribution (leave-one-out, overall points):")
            print(ex.top_ways[["osm_id", "name", "cause", "tag_diff", "overall_points"]]
                  .to_string(index=False, formatters={"overall_points": points_text}))
        if ex.destinations is not None and len(ex.destinations):
            d = ex.destinations[(ex.destinations["added"] > 0) | (ex.destinations["removed"] > 0)]
            if len(d):
                print("\nDestinations added / removed:")
                print(d.to_string(index=False))
        for u in ex.unavailable:
            print(f"note: {u}")
        for n in ex.notes:
            print(f"note: {n}")
    if out is not None:
        print(f"report: {out}")
    return 0
