"""Improvement planner: which street upgrades raise the score most for the money.

>>> p = make_plan("outputs/results/helsinki-demo", budget_km=5)         # doctest: +SKIP
>>> p.table                      # ordered plan: ways, treatment, km, cost, gain, score
>>> p.curve(); p.chart(); p.map(); p.to_geojson("plan.geojson")
>>> p.verify()                   # one full engine run with every edit: the same final score
...                              # (within VERIFY_TOLERANCE: half of the 4th decimal)

Candidates are whole OSM ways (``all-high-stress``: ways with a high-stress segment; or a
pandas filter on the way attributes; or a GeoJSON of proposed projects). Each gets a
treatment, a scenario preset (:data:`pna_helpers.scenario.CHANGES` or ``"speed limit N
mph"``) chosen by its class (:data:`TREATMENTS`), and a cost from the editable per-km table
:data:`COST_PER_KM`. Selection is lazy-greedy under the budget: candidates are ranked by score
gain per cost (then newly low-stress connected pairs per cost, which separates the many
single ways whose gain alone is zero); after each pick the best stale candidate is
re-evaluated on the changed network until the top one is fresh. Every evaluation is an
incremental re-score (:mod:`pna_engine.incremental`), identical to a full run.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import html as _html
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pna_engine.errors import InputError
from pna_engine.incremental import Baseline, NotIncremental, Rescore

#: Cost per km of a treatment (both directions of the street), in the currency of your
#: choice (default: rough US dollars). Edit it, or pass ``costs=`` to :func:`make_plan`.
COST_PER_KM: dict[str, float] = {
    "protected bike lane": 1_000_000.0,
    "protected bike lane both ways": 1_200_000.0,
    "buffered bike lane both ways": 250_000.0,
    "bike lane both ways": 120_000.0,
    "sharrows both ways": 20_000.0,
    "speed limit 20 mph": 30_000.0,
}
#: Treatment per functional class (classes not listed are not candidates: motorways, trunks).
TREATMENTS: dict[str, str] = {
    "primary": "protected bike lane", "primary_link": "protected bike lane",
    "secondary": "protected bike lane", "secondary_link": "protected bike lane",
    "tertiary": "protected bike lane", "tertiary_link": "protected bike lane",
    "residential": "speed limit 20 mph", "unclassified": "speed limit 20 mph",
    "living_street": "speed limit 20 mph",
}
#: Candidates whose tag edits are turned into stress changes in one pass.
CHUNK = 400
#: :meth:`Plan.verify`: the full run's score matches the plan's when they differ by at most
#: this much (half of the 4th decimal: equal when both are rounded to 4 decimals).
VERIFY_TOLERANCE = 0.00005
#: The x axes of :meth:`Plan.chart`.
CHART_AXES = ("cost", "km")
#: Targets: name -> score_id of ``neighborhood_overall_scores``.
TARGETS: dict[str, str] = {
    "overall": "overall_score", "people": "people", "opportunity": "opportunity",
    "core_services": "core_services", "retail": "retail", "recreation": "recreation",
    "transit": "transit",
}


def target_id(target: str) -> str:
    """The score_id of a target name (``overall``, ``people``, ... or any score_id).

    Parameters
    ----------
    target : str
        A name of :data:`TARGETS` or a score_id of the overall score's parts (any case).

    Returns
    -------
    str
        The score_id, e.g. ``overall_score`` for ``overall``.

    Raises
    ------
    InputError
        An unknown target.
    """
    from pna_engine.scores import OVERALL_SUBSCORES

    t = str(target).strip().lower()
    if t in TARGETS:
        return TARGETS[t]
    if t in OVERALL_SUBSCORES or t in TARGETS.values():
        return t
    raise InputError(f"unknown target {target!r}: use one of {', '.join(TARGETS)} or a score_id "
                     f"such as {', '.join(list(OVERALL_SUBSCORES)[:4])}")


def baseline_for(results: Any, workers: int | None = None) -> tuple[Any, Baseline]:
    """(Results, in-memory :class:`Baseline`) of a PNA result (re-run without export from
    its ``run.json`` inputs).

    Parameters
    ----------
    results : Any
        A results folder, ``.zip``, ``s3://`` prefix, job id or
        :class:`~pna_helpers.results.Results` (see :func:`~pna_helpers.results.load_results`).
    workers : int or None, optional
        Engine worker processes; None keeps the run's setting.

    Returns
    -------
    tuple of (Results, Baseline)
        The loaded results and the baseline computed from their inputs.

    Raises
    ------
    InputError
        The results cannot be loaded, or their run's inputs are unusable.
    """
    from pna_engine.params import Params, Quirks
    from pna_helpers.results import load_results
    from pna_helpers.scenario import _baseline_params

    res = load_results(results)
    pdict = _baseline_params(res)
    pdict["quirks"] = Quirks(**(pdict.get("quirks") or {}))
    if workers is not None:
        pdict["workers"] = workers
    known = set(Params.__dataclass_fields__)
    params = Params(**{k: v for k, v in pdict.items() if k in known})
    return res, Baseline.from_params(params)


def score_of(r: Rescore | Baseline, sid: str) -> float:
    """A target score (normalised, NULL = 0) of a baseline or a rescore.

    Parameters
    ----------
    r : Rescore or Baseline
        The scored network.
    sid : str
        A score_id (see :func:`target_id`).

    Returns
    -------
    float
        The score; 0.0 when it is missing or NULL.
    """
    if sid == "overall_score":
        v = r.overall_score
    else:
        from pna_engine.incremental import scores_series

        v = scores_series(r.overall_scores).get(sid)
    return 0.0 if v is None or v != v else float(v)


def low_pairs_gained(r: Rescore) -> int:
    """Connected pairs that became low-stress minus those that stopped being.

    Parameters
    ----------
    r : Rescore
        A re-score against its baseline (``r.base``).

    Returns
    -------
    int
        The net change; 0 when the re-score did not recompute connectivity.
    """
    if r._pair_pos is None:
        return 0
    old = r.base.conn.low_stress[r._pair_pos]
    return int(r._low_stress.sum()) - int(old.sum())


# --------------------------------------------------------------------------- candidates
def _way_table(base: Baseline) -> pd.DataFrame:
    """One row per OSM way: name, class, length (m), high-stress flag."""
    import shapely

    w = base.attrs
    length = shapely.length(np.asarray(base.ways.geometry.values))
    st = {c: base.stress[c] for c in ("ft_seg_stress", "tf_seg_stress")}
    high = (st["ft_seg_stress"] == 3) | (st["tf_seg_stress"] == 3)
    df = pd.DataFrame({"osm_id": base.osm_id, "name": w["name"].astype(object).to_numpy(),
                       "functional_class": w["functional_class"].astype(object).to_numpy(),
                       "length_m": length, "high": high})
    df = df[df["osm_id"].notna()]
    df["osm_id"] = df["osm_id"].astype("int64")

    def first(s: pd.Series) -> Any:
        s = s.dropna()
        return s.iloc[0] if len(s) else None

    g = df.groupby("osm_id", sort=True)
    return pd.DataFrame({"name": g["name"].agg(first), "functional_class": g[
        "functional_class"].agg(first), "length_m": g["length_m"].sum(),
        "high": g["high"].any()})


def _costs(costs: dict[str, float] | None) -> dict[str, float]:
    table = dict(COST_PER_KM)
    table.update({str(k).lower(): float(v) for k, v in (costs or {}).items()})
    return table


def _cost_of(treatment: str, km: float, table: dict[str, float]) -> float:
    t = treatment.lower()
    if t not in table:
        raise InputError(f"no cost per km for treatment {treatment!r}: add it to the cost table "
                         f"(costs={{'{treatment}': COST}}); known: {', '.join(table)}")
    return table[t] * km


def candidates(base: Baseline, spec: str = "all-high-stress", costs: dict[str, float] | None = None,
               treatments: dict[str, str] | str | None = None) -> pd.DataFrame:
    """The candidate projects: ``id, osm_ids, name, functional_class, treatment, length_km,
    cost, edits``.

    ``spec`` is ``"all-high-stress"`` (every way with a high-stress segment, except the
    classes with no treatment), a pandas filter on the way attributes (``"functional_class ==
    'secondary'"``), or a GeoJSON file of proposed projects: one feature per project with
    property ``osm_id`` (a way id, a list or a comma-separated string) and optionally
    ``treatment``, ``cost`` and ``name``.

    Parameters
    ----------
    base : Baseline
        The network (see :func:`baseline_for`).
    spec : str, optional
        As above; default ``"all-high-stress"``.
    costs : dict or None, optional
        Cost per km by treatment, merged over :data:`COST_PER_KM` (keys are lower-cased).
    treatments : dict or str or None, optional
        Treatment by functional class, merged over :data:`TREATMENTS`, or one treatment for
        every class of :data:`TREATMENTS`. A project file's ``treatment`` property wins.

    Returns
    -------
    pandas.DataFrame
        One row per candidate (``id`` 0, 1, ...); ``edits`` is way id -> tags of the
        treatment; candidates whose cost is not positive are left out.

    Raises
    ------
    InputError
        A bad filter or project file, a way id not in the network, or a treatment that is
        unknown or has no cost per km.
    """
    from pna_helpers.scenario import change_tags

    table = _costs(costs)
    by_class = dict(TREATMENTS)
    if isinstance(treatments, str):
        by_class = {k: treatments for k in by_class}
    elif treatments:
        by_class.update(treatments)
    ways = _way_table(base)
    rows: list[dict[str, Any]] = []
    spec = (spec or "all-high-stress").strip()
    if spec.lower().endswith((".geojson", ".json")):
        rows = _project_rows(spec, ways, by_class)
    else:
        if spec == "all-high-stress":
            sel = ways[ways["high"]]
        else:
            attrs = base.attrs.assign(osm_id=base.osm_id)
            try:
                ids = attrs.query(spec)["osm_id"].dropna().astype("int64").unique()
            except Exception as exc:
                raise InputError(f"bad candidate filter {spec!r}: {exc}; it is a pandas query "
                                 "on way attributes such as functional_class, speed_limit, "
                                 "ft_lanes, name") from exc
            sel = ways.loc[ways.index.isin(ids)]
        for wid, w in sel.iterrows():
            t = by_class.get(w["functional_class"])
            if t is None:
                continue
            rows.append({"osm_ids": [int(wid)], "name": w["name"],
                         "functional_class": w["functional_class"], "treatment": t,
                         "length_km": w["length_m"] / 1000.0, "cost": None})
    out = []
    for i, r in enumerate(rows):
        tags = change_tags(r["treatment"])
        cost = r["cost"] if r["cost"] is not None else _cost_of(r["treatment"], r["length_km"],
                                                                 table)
        out.append({**r, "id": i, "cost": float(cost),
                    "edits": {w: dict(tags) for w in r["osm_ids"]}})
    cols = ["id", "osm_ids", "name", "functional_class", "treatment", "length_km", "cost",
            "edits"]
    df = pd.DataFrame(out, columns=cols)
    return df[df["cost"] > 0].reset_index(drop=True)


def _project_rows(path: str, ways: pd.DataFrame, by_class: dict[str, str]) -> list[dict]:
    p = Path(path)
    if not p.exists():
        raise InputError(f"candidate file {path} does not exist")
    try:
        data = json.loads(p.read_text())
        feats = data["features"] if data.get("type") == "FeatureCollection" else [data]
    except (ValueError, KeyError, AttributeError) as exc:
        raise InputError(f"{path} is not a GeoJSON FeatureCollection: {exc}") from exc
    rows = []
    for k, f in enumerate(feats):
        props = f.get("properties") or {}
        raw = props.get("osm_id", props.get("osm_ids", props.get("way_ids")))
        if raw is None:
            raise InputError(f"{path}: feature {k} has no osm_id property (give the OSM way ids "
                             "of the project: a number, a list or '1,2,3')")
        ids = raw if isinstance(raw, list) else str(raw).replace(";", ",").split(",")
        try:
            ids = [int(str(x).strip()) for x in ids if str(x).strip()]
        except ValueError as exc:
            raise InputError(f"{path}: feature {k} has a bad osm_id {raw!r}") from exc
        missing = [i for i in ids if i not in ways.index]
        if missing:
            raise InputError(f"{path}: feature {k}: way ids not in the network: {missing[:5]}")
        w = ways.loc[ids]
        fc = w["functional_class"].iloc[0]
        t = props.get("treatment") or by_class.get(fc)
        if not t:
            raise InputError(f"{path}: feature {k} ({fc}) has no treatment: add a 'treatment' "
                             "property (a scenario preset such as 'protected bike lane')")
        rows.append({"osm_ids": ids, "name": props.get("name") or w["name"].dropna().iloc[0]
                     if w["name"].notna().any() else props.get("name"),
                     "functional_class": fc, "treatment": t,
                     "length_km": float(w["length_m"].sum()) / 1000.0,
                     "cost": float(props["cost"]) if props.get("cost") is not None else None})
    return rows


# --------------------------------------------------------------------------- the plan
@dataclass
class Plan:
    """An ordered improvement plan (see :func:`make_plan`)."""

    results: Any
    target: str
    baseline_score: float
    table: pd.DataFrame
    budget: dict[str, float]
    evaluated: int
    skipped: list[str]
    seconds: float
    geometries: Any = field(default=None, repr=False)
    params: Any = field(default=None, repr=False)
    #: the baseline network (stress before the plan), drawn under the plan on the map
    ways: Any = field(default=None, repr=False)

    @property
    def final_score(self) -> float:
        """The target score after the last step.

        Returns
        -------
        float
            The last step's score; :attr:`baseline_score` for an empty plan.
        """
        return float(self.table["score"].iloc[-1]) if len(self.table) else self.baseline_score

    @property
    def edits(self) -> dict[int, dict[str, str | None]]:
        """Every OSM tag edit of the plan (way id -> tags), as ``Params.way_tag_edits``.

        Returns
        -------
        dict
            Way id -> ``{tag: value}`` (None deletes the tag); a way in several steps has
            their tags merged, later steps winning.
        """
        out: dict[int, dict[str, str | None]] = {}
        for e in self.table["edits"]:
            for w, t in e.items():
                out[int(w)] = {**out.get(int(w), {}), **t}
        return out

    def curve(self) -> pd.DataFrame:
        """Score after each step against the money and kilometres spent (step 0 = today).

        Returns
        -------
        pandas.DataFrame
            Columns ``step``, ``cost`` and ``km`` (cumulative), ``score``; one row more
            than the plan.
        """
        t = self.table
        return pd.DataFrame({
            "step": np.arange(len(t) + 1),
            "cost": np.concatenate([[0.0], t["cumulative_cost"].to_numpy(float)]),
            "km": np.concatenate([[0.0], t["cumulative_km"].to_numpy(float)]),
            "score": np.concatenate([[self.baseline_score], t["score"].to_numpy(float)]),
        })

    def chart(self, by: str = "cost") -> Any:
        """The curve "score vs money" (``by="cost"``) or "vs km" (``by="km"``).

        Parameters
        ----------
        by : str, optional
            ``"cost"`` (default) or ``"km"``: the x axis.

        Returns
        -------
        matplotlib.figure.Figure
            A step chart of :meth:`curve`, points numbered by step. It is the caller's to
            close (``matplotlib.pyplot.close(fig)``) when not shown in a notebook.

        Raises
        ------
        InputError
            ``by`` is not one of :data:`CHART_AXES`.
        """
        from pna_helpers.charts import _plt

        if by not in CHART_AXES:
            raise InputError(f"plan chart: by={by!r} is not an axis; use one of "
                             f"{', '.join(repr(a) for a in CHART_AXES)}")
        plt = _plt()
        c = self.curve()
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.step(c[by], c["score"], where="post", color="#31a354", lw=2)
        ax.plot(c[by], c["score"], "o", color="#006d2c", ms=4)
        for _, r in c.iloc[1:].iterrows():
            ax.annotate(str(int(r["step"])), (r[by], r["score"]), textcoords="offset points",
                        xytext=(3, 4), fontsize=8)
        ax.set_xlabel("money spent" if by == "cost" else "km treated")
        ax.set_ylabel(f"{self.target} score")
        ax.set_title(f"{self.target} score along the plan")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def frame(self) -> Any:
        """GeoDataFrame (EPSG:4326): one row per planned way, with its step and the step's
        treatment, cost, gain and cumulative score.

        Returns
        -------
        geopandas.GeoDataFrame
            Columns ``osm_id``, ``step``, ``name``, ``treatment``, ``length_km``, ``cost``,
            ``gain``, ``score``, ``url`` and the geometry (empty for an empty plan).
        """
        import geopandas as gpd

        if self.geometries is None or not len(self.table):
            return gpd.GeoDataFrame({"step": []}, geometry=[], crs=4326)
        rows = []
        for _, r in self.table.iterrows():
            for w in r["osm_ids"]:
                rows.append({"osm_id": int(w), "step": int(r["step"]), "name": r["name"],
                             "treatment": r["treatment"], "length_km": r["length_km"],
                             "cost": r["cost"], "gain": r["gain"], "score": r["score"],
                             "url": f"https://www.openstreetmap.org/way/{int(w)}"})
        df = pd.DataFrame(rows)
        g = self.geometries.reindex(df["osm_id"].to_numpy())
        return gpd.GeoDataFrame(df, geometry=g.to_numpy(), crs=self.geometries.crs).to_crs(4326)

    def to_geojson(self, path: str | Path) -> Path:
        """Write the plan as GeoJSON (one feature per way) atomically.

        Parameters
        ----------
        path : str or Path
            The file to write (see :meth:`frame` for the properties).

        Returns
        -------
        Path
            ``path``.
        """
        from pna_engine.atomic import write_text

        path = Path(path)
        write_text(path, self.frame().to_json(na="null", drop_id=True))
        return path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``pna plan --json``).

        Returns
        -------
        dict
            ``results``, ``target``, ``baseline_score``, ``final_score``, ``budget``,
            ``candidates_evaluated``, ``seconds``, ``skipped`` and ``steps`` (the table's rows
            without ``edits``).
        """
        steps = self.table.drop(columns=["edits"]).to_dict(orient="records")
        return {"results": str(self.results), "target": self.target,
                "baseline_score": self.baseline_score, "final_score": self.final_score,
                "budget": self.budget, "candidates_evaluated": self.evaluated,
                "seconds": round(self.seconds, 2), "skipped": self.skipped, "steps": steps}

    def map(self) -> Any:
        """The plan on a map: planned ways in green, numbered by step (offline map).

        The baseline network's stress layers are drawn under the plan.

        Returns
        -------
        pna_helpers.maps.OfflineMap
            A folium map.
        """
        import folium

        from pna_helpers import maps

        fr = self.frame()
        m = maps.new_map(fr if len(fr) else None, canvas=self.ways is not None
                         and len(self.ways) > 5000)
        if self.ways is not None:
            maps.add_stress_layers(m, self.ways, show=True)
        if not len(fr):
            return m
        fr = fr.assign(label=[_html.escape(str(n)) if n is not None and n == n else "(unnamed)"
                              for n in fr["name"]],
                       treatment_text=[_html.escape(str(t)) for t in fr["treatment"]],
                       gain_text=[f"{g:+.2f}" for g in fr["gain"]])
        data = maps.compact_geojson(fr, ["step", "osm_id", "label", "treatment_text",
                                         "gain_text"], tolerance_m=0.5)
        folium.GeoJson(data, name="Planned ways", style_function=lambda _f: {
            "color": "#00a000", "weight": 6, "opacity": 0.9},
            tooltip=folium.GeoJsonTooltip(
                fields=["step", "label", "treatment_text", "gain_text", "osm_id"],
                aliases=["step", "name", "treatment", "gain", "OSM way"])).add_to(m)
        utm = fr.estimate_utm_crs()
        for step, grp in fr.groupby("step"):
            pt = grp.to_crs(utm).geometry.union_all().representative_point()
            ll = pd.Series([pt], dtype=object)
            import geopandas as gpd

            p = gpd.GeoSeries(ll, crs=utm).to_crs(4326).iloc[0]
            folium.Marker([p.y, p.x], icon=folium.DivIcon(
                icon_size=(22, 22), icon_anchor=(11, 11),
                html=f'<div class="pna-plan-step" style="background:#006d2c;color:#fff;'
                     f'border-radius:11px;width:22px;height:22px;text-align:center;'
                     f'font:bold 12px/22px sans-serif;">{int(step)}</div>')).add_to(m)
        maps.add_legend(m, f"Plan ({self.target})",  # add_legend escapes
                        [("#00a000", "planned way (number = step)")])
        folium.LayerControl(collapsed=False).add_to(m)
        return m

    def report_section(self) -> str:
        """An HTML section: summary, the ordered plan (escaped), the curve and the map.

        Returns
        -------
        str
            A ``<section class="pna-plan">`` element (chart as an inline PNG).
        """
        import base64
        import io

        t = self.table
        head = ("<h2>Improvement plan</h2><p>" + _html.escape(
            f"Target: {self.target}. {len(t)} projects, {t['length_km'].sum():.2f} km, cost "
            f"{t['cost'].sum():,.0f}: score {self.baseline_score:.2f} -> {self.final_score:.2f} "
            f"({self.evaluated} candidate evaluations, {self.seconds:.1f} s).") + "</p>")
        show = t[["step", "osm_ids", "name", "treatment", "length_km", "cost", "gain",
                  "score"]].copy()
        show["osm_ids"] = [", ".join(str(i) for i in x) for x in show["osm_ids"]]
        show["name"] = [n if isinstance(n, str) else "" for n in show["name"]]
        tab = show.to_html(index=False, escape=True, float_format=lambda v: f"{v:,.2f}")
        from pna_helpers.charts import _plt

        buf = io.BytesIO()
        fig = self.chart()
        try:
            fig.savefig(buf, format="png", dpi=90)
        finally:
            _plt().close(fig)  # drawn into the page: no figure left open
        img = ('<img alt="score vs money" src="data:image/png;base64,'
               + base64.b64encode(buf.getvalue()).decode() + '">')
        return f'<section class="pna-plan">{head}{tab}{img}{self.map()._repr_html_()}</section>'

    def save_report(self, path: str | Path) -> Path:
        """A standalone HTML page with :meth:`report_section`.

        Parameters
        ----------
        path : str or Path
            The HTML file to write (atomically).

        Returns
        -------
        Path
            ``path``.
        """
        from pna_engine.atomic import write_text
        from pna_helpers._html import page

        write_text(Path(path), page(f"Improvement plan: {self.results}", self.report_section()))
        return Path(path)

    def verify(self, workers: int | None = None) -> dict[str, Any]:
        """Apply every edit of the plan in one full engine run (no export); its target score
        must be the plan's final score, within :data:`VERIFY_TOLERANCE` (half of the 4th
        decimal).

        The run stops after the scores, in a temporary folder that is removed afterwards.

        Parameters
        ----------
        workers : int or None, optional
            Engine worker processes; None keeps the baseline's setting.

        Returns
        -------
        dict
            ``plan`` (:attr:`final_score`), ``full_run`` (the full run's target score),
            ``difference`` (``full_run - plan``), ``tolerance`` (:data:`VERIFY_TOLERANCE`) and
            ``match`` (``|difference| <= tolerance``).

        Raises
        ------
        InputError
            The plan has no baseline parameters (:attr:`params` is None).
        """
        from pna_engine import pipeline
        from pna_engine.incremental import scores_series

        if self.params is None:
            raise InputError("this plan has no baseline parameters to re-run")
        tmp = Path(tempfile.mkdtemp(prefix="pna-plan-verify-"))
        try:
            p = dataclasses.replace(self.params, output=str(tmp), way_tag_edits=self.edits,
                                    workers=workers if workers is not None
                                    else self.params.workers)
            s = pipeline.run(p, stop_after="scores")
        finally:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        sid = target_id(self.target)
        full = s.scores.overall_score if sid == "overall_score" else \
            scores_series(s.scores.overall_scores).get(sid)
        full = 0.0 if full is None or full != full else float(full)
        return verify_result(self.final_score, full)


def verify_result(plan_score: float, full_run: float,
                  tolerance: float = VERIFY_TOLERANCE) -> dict[str, Any]:
    """What :meth:`Plan.verify` reports for a plan's and a full run's score.

    Parameters
    ----------
    plan_score : float
        The plan's final score.
    full_run : float
        The full engine run's score with every edit.
    tolerance : float, optional
        The largest difference that still matches (default :data:`VERIFY_TOLERANCE`).

    Returns
    -------
    dict
        ``plan``, ``full_run``, ``difference`` (``full_run - plan``), ``tolerance`` and
        ``match``.
    """
    diff = float(full_run) - float(plan_score)
    return {"plan": float(plan_score), "full_run": float(full_run), "difference": diff,
            "tolerance": tolerance, "match": bool(abs(diff) <= tolerance)}


def make_plan(results: Any, budget_km: float | None = None, budget_cost: float | None = None,
              target: str = "overall", candidates_spec: str = "all-high-stress",
              costs: dict[str, float] | None = None,
              treatments: dict[str, str] | str | None = None, workers: int | None = None,
              baseline: Baseline | None = None, max_steps: int = 200,
              progress: bool = False) -> Plan:
    """Lazy-greedy improvement plan under a budget (see the module docstring).

    Parameters
    ----------
    results : str, Path or Results
        A PNA result with ``run.json`` (its inputs are re-read to hold the baseline).
    budget_km, budget_cost : float, optional
        Kilometres of street or money to spend (one of them; default 5 km).
    target : str
        ``overall``, ``people``, ``opportunity``, ``core_services``, ``retail``,
        ``recreation``, ``transit`` or a score_id.
    candidates_spec : str
        ``all-high-stress``, a pandas filter on way attributes, or a GeoJSON file of projects.
    costs : dict, optional
        Cost per km by treatment, merged over :data:`COST_PER_KM`.
    treatments : dict or str, optional
        Treatment by functional class (merged over :data:`TREATMENTS`) or one for all.
    workers : int, optional
        Engine worker processes for the baseline run (default: the run's setting).
    baseline : Baseline, optional
        An in-memory baseline to reuse (it is changed: the plan's edits are committed).
    max_steps : int
        At most this many steps (default 200).
    progress : bool
        Show a tqdm bar while the candidates are first evaluated (default False).

    Returns
    -------
    Plan
        The steps in order; it stops when the budget is spent, no candidate fits, or the
        best candidate gains neither score nor low-stress pairs.

    Raises
    ------
    InputError
        Both budgets given, a budget that is not positive, an unknown target, or bad
        candidates (see :func:`candidates`).
    """
    t0 = time.perf_counter()
    if budget_km is not None and budget_cost is not None:
        raise InputError("give either a budget in km or a budget in money, not both")
    if budget_km is None and budget_cost is None:
        budget_km = 5.0
    budget = float(budget_km if budget_km is not None else budget_cost)
    if not budget > 0:
        raise InputError(f"the budget must be a positive number, got {budget}")
    by_km = budget_km is not None
    sid = target_id(target)
    if baseline is None:
        res, base = baseline_for(results, workers)
    else:
        res, base = results, baseline
    cands = candidates(base, candidates_spec, costs, treatments)
    spend = cands["length_km"].to_numpy(float) if by_km else cands["cost"].to_numpy(float)
    start = score_of(base, sid)
    current = start
    skipped: list[str] = []
    evaluated = 0

    def evaluate(i: int, pre: Any = None) -> tuple[float, int, Rescore | None]:
        nonlocal evaluated
        evaluated += 1
        edits = cands.at[i, "edits"]
        try:
            if isinstance(pre, Exception):
                raise pre
            r = base.rescore(way_tag_edits=(edits, pre) if pre is not None else edits)
        except NotIncremental as exc:
            skipped.append(f"{cands.at[i, 'osm_ids']}: {exc}")
            return -np.inf, 0, None
        return score_of(r, sid) - current, low_pairs_gained(r), r

    heap: list[tuple[float, float, int, int]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cands), desc="candidates", unit="way")
    for lo in range(0, len(cands), CHUNK):  # tag -> stress for a chunk in one pass
        ids = list(range(lo, min(lo + CHUNK, len(cands))))
        pre = base.stress_for_edits_many([cands.at[i, "edits"] for i in ids])
        for i, p in zip(ids, pre):
            g, pg, _r = evaluate(i, p)
            if bar is not None:
                bar.update(1)
            if g == -np.inf:
                continue
            c = max(float(spend[i]), 1e-12)
            heapq.heappush(heap, (-g / c, -pg / c, i, 0))
    if bar is not None:
        bar.close()
    steps: list[dict[str, Any]] = []
    left = budget
    step = 0
    fresh: dict[int, Rescore] = {}
    while heap and len(steps) < max_steps:
        kg, kp, i, at = heapq.heappop(heap)
        if spend[i] > left + 1e-9:
            continue
        if at != step or i not in fresh:
            g, pg, r = evaluate(i)
            if r is None:
                continue
            fresh = {i: r}
            c = max(float(spend[i]), 1e-12)
            heapq.heappush(heap, (-g / c, -pg / c, i, step))
            continue
        r = fresh.pop(i)
        gain = score_of(r, sid) - current
        pairs = low_pairs_gained(r)
        if gain <= 0 and pairs <= 0:
            break  # the best fresh candidate adds nothing
        base.commit(r)
        current = score_of(base, sid)
        left -= spend[i]
        step += 1
        row = cands.loc[i]
        steps.append({"step": step, "osm_ids": list(row["osm_ids"]), "name": row["name"],
                      "functional_class": row["functional_class"],
                      "treatment": row["treatment"], "length_km": float(row["length_km"]),
                      "cost": float(row["cost"]), "gain": round(gain, 4),
                      "low_stress_pairs_gained": pairs, "score": current,
                      "edits": row["edits"]})
    table = pd.DataFrame(steps, columns=["step", "osm_ids", "name", "functional_class",
                                         "treatment", "length_km", "cost", "gain",
                                         "low_stress_pairs_gained", "score", "edits"])
    table["cumulative_km"] = table["length_km"].cumsum()
    table["cumulative_cost"] = table["cost"].cumsum()
    geoms = _way_geometries(base, [w for ids in table["osm_ids"] for w in ids])
    return Plan(results=getattr(res, "location", results), target=target,
                baseline_score=start, table=table,
                budget={"km" if by_km else "cost": budget}, evaluated=evaluated,
                skipped=skipped, seconds=time.perf_counter() - t0, geometries=geoms,
                params=base.params, ways=base.ways)


def _way_geometries(base: Baseline, osm_ids: list[int]) -> Any:
    """One (multi)line per OSM way, in the run's CRS."""
    import geopandas as gpd

    ids = np.asarray(osm_ids, dtype=float)
    keep = np.isin(base.osm_id, ids)
    g = gpd.GeoDataFrame({"osm_id": base.osm_id[keep].astype("int64")},
                         geometry=base.ways.geometry.values[keep], crs=base.ways.crs)
    return g.dissolve("osm_id").geometry if len(g) else gpd.GeoSeries([], crs=base.ways.crs)


# --------------------------------------------------------------------------- CLI
def register(subparsers: Any) -> None:
    """Add ``pna plan`` to the ``pna`` command's subparsers.

    Parameters
    ----------
    subparsers : Any
        The ``add_subparsers()`` object of the ``pna`` parser.
    """
    p = subparsers.add_parser(
        "plan", help="which street upgrades raise the score most under a budget",
        description="Lazy-greedy improvement plan on a PNA result (incremental re-scoring).")
    p.add_argument("results", help="PNA results folder or job id (with run.json)")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--budget-km", type=float, default=None, help="km of street (default 5)")
    b.add_argument("--budget-cost", type=float, default=None, help="money to spend")
    p.add_argument("--target", default="overall",
                   help="score to maximise: overall, people, opportunity, core_services, "
                        "retail, recreation, transit or a score_id")
    p.add_argument("--candidates", default="all-high-stress",
                   help="all-high-stress, a pandas filter on way attributes, or FILE.geojson")
    p.add_argument("--cost", action="append", default=[], metavar="TREATMENT=PER_KM",
                   help="override a cost per km (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="engine worker processes")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("-o", "--output", default=None, help="write the plan as GeoJSON")
    p.add_argument("--report", default=None, help="write an HTML report section page")
    p.add_argument("--verify", action="store_true",
                   help="check the final score with one full engine run (it must match "
                        f"within {VERIFY_TOLERANCE:g}; exit 1 if not)")
    p.set_defaults(func=run_cli)


def _parse_costs(items: list[str]) -> dict[str, float]:
    out = {}
    for it in items:
        k, sep, v = it.rpartition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            sep = ""
        if not sep or not k.strip():
            raise InputError(f"--cost expects TREATMENT=COST_PER_KM, got {it!r}")
    return out


def run_cli(args: argparse.Namespace) -> int:
    """Entry of ``pna plan``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``pna plan`` arguments.

    Returns
    -------
    int
        The exit code: 1 when ``--verify`` finds a different score, else 0.

    Raises
    ------
    InputError
        A bad ``--cost``, budget, target or candidate argument, or unusable results.
    """
    plan = make_plan(args.results, budget_km=args.budget_km, budget_cost=args.budget_cost,
                     target=args.target, candidates_spec=args.candidates,
                     costs=_parse_costs(args.cost), workers=args.workers,
                     progress=sys.stderr.isatty())
    out = plan.to_dict()
    if args.verify:
        out["verify"] = plan.verify()
    if args.output:
        plan.to_geojson(args.output)
    if args.report:
        plan.save_report(args.report)
    if args.json:
        print(json.dumps(out, indent=1, default=str))
    else:
        print(f"target {plan.target}: {plan.baseline_score:.2f} -> {plan.final_score:.2f} "
              f"({out['candidates_evaluated']} evaluations, {plan.seconds:.1f} s)")
        for s in out["steps"]:
            print(f"{s['step']:>3}  way {','.join(map(str, s['osm_ids']))}  "
                  f"{(s['name'] if isinstance(s['name'], str) else '(unnamed)')[:30]:30}  "
                  f"{s['treatment']:28} "
                  f"{s['length_km']:6.2f} km  {s['cost']:>12,.0f}  gain {s['gain']:+.2f}  "
                  f"score {s['score']:.2f}")
        if "verify" in out:
            v = out["verify"]
            print(f"full run with every edit: {v['full_run']:.4f} (difference "
                  f"{v['difference']:+.2g}: {'matches' if v['match'] else 'DIFFERS'} within "
                  f"{v['tolerance']:g})")
    if args.verify and not out["verify"]["match"]:
        return 1
    return 0
