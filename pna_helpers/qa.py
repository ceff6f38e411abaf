"""OSM data QA ranked by score impact: which missing tags to check first.

>>> q = osm_qa("outputs/results/helsinki-demo")                       # doctest: +SKIP
>>> q.table.head()      # osm_id, url, tag, default used, score range ...
>>> q.summary           # share of segments / stress-mileage resting on defaults
>>> q.to_geojson("qa.geojson"); q.to_csv("qa.csv"); q.map()

The engine records which defaults each segment's stress used (:mod:`pna_engine.defaults`:
speed, lanes, painted-lane width, parking, one-way). For every OSM way and missing tag, the
way is re-scored with plausible values of that tag (:data:`ALTERNATIVES`, e.g. maxspeed
20/25/30/35 mph) by the incremental re-scorer (identical to full runs); the spread of the
overall score over the default and those values is the tag's **score range**. Ways and tags
are ranked by it: the top rows are the tags worth checking on the ground first.
"""

from __future__ import annotations

import argparse
import html as _html
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pna_engine.errors import InputError

#: Plausible values tried for each missing tag (a default's kind -> OSM tag -> values).
ALTERNATIVES: dict[str, tuple[str, tuple[str, ...]]] = {
    "speed": ("maxspeed", ("20 mph", "25 mph", "30 mph", "35 mph")),
    "lanes": ("lanes", ("2", "4")),
    "width": ("cycleway:both:width", ("1.2", "1.8")),
    "parking": ("parking:lane:both", ("parallel", "no_parking")),
}
NOTES = {
    "parking": "bsa's stress does not read parking: no score impact",
    "oneway": "a one-way flag changes the network's shape: check with a scenario",
}
#: Edits turned into stress changes in one pass.
CHUNK = 500
#: Rows ``pna qa`` prints without ``--top``.
TOP_PRINTED = 20

#: A score range (points) below this does not move the overall score as it is shown (2 decimals).
MOVES_SCORE = 0.005


@dataclass
class QA:
    """The ranked "tags to check" of a result (see :func:`osm_qa`)."""

    results: Any
    baseline_score: float
    table: pd.DataFrame
    summary: dict[str, Any]
    evaluated: int
    seconds: float
    geometries: Any = field(default=None, repr=False)
    #: the network, drawn (hidden at first) under the list on the map
    ways: Any = field(default=None, repr=False)

    @property
    def headline(self) -> str:
        """One sentence: how many of the missing tags tried move the overall score, and the
        largest; or that none does (then the list is only ordered by length).

        Returns
        -------
        str
            Plain text (escape it for HTML).
        """
        rng = pd.to_numeric(self.table.get("score_range", pd.Series(dtype=float)),
                            errors="coerce")
        tried = int(rng.notna().sum())
        moving = rng[rng >= MOVES_SCORE]
        if not tried:
            return "No missing tag could be re-scored: nothing to rank."
        if not len(moving):
            return (f"None of the {tried:,} missing tags tried moves the overall score "
                    f"({self.baseline_score:.2f}) by {MOVES_SCORE:.2f} point or more: here the "
                    "defaults do not decide the score, and the list is only ordered by length "
                    "(longest first).")
        top = self.table.loc[moving.idxmax()]
        where = _txt(top.get("name")) or f"way {int(top['osm_id'])}"
        return (f"{len(moving):,} of the {tried:,} missing tags tried move the overall score "
                f"({self.baseline_score:.2f}); the largest, {top['tag']} on {where}, by up to "
                f"{float(moving.max()):.2f} points.")

    def frame(self) -> Any:
        """GeoDataFrame (EPSG:4326) of :attr:`table` with each way's geometry.

        Returns
        -------
        geopandas.GeoDataFrame
            The table's columns (``alternatives`` and ``scores`` joined as text) and the
            geometry; one row per way and tag.
        """
        import geopandas as gpd

        if self.geometries is None or not len(self.table):
            return gpd.GeoDataFrame(self.table.copy(), geometry=[None] * len(self.table),
                                    crs=4326)
        g = self.geometries.reindex(self.table["osm_id"].to_numpy())
        t = self.table.copy()
        t["alternatives"] = [", ".join(a) for a in t["alternatives"]]
        t["scores"] = [", ".join(f"{v:.2f}" for v in x) for x in t["scores"]]
        return gpd.GeoDataFrame(t, geometry=g.to_numpy(), crs=self.geometries.crs).to_crs(4326)

    def to_geojson(self, path: str | Path) -> Path:
        """Write the ranked list as GeoJSON (mapping tools load it) atomically.

        Parameters
        ----------
        path : str or Path
            The file to write (properties as :meth:`frame`).

        Returns
        -------
        Path
            ``path``.
        """
        from pna_engine.atomic import write_text

        write_text(Path(path), self.frame().to_json(na="null", drop_id=True))
        return Path(path)

    def to_csv(self, path: str | Path) -> Path:
        """Write the ranked list as CSV atomically.

        Parameters
        ----------
        path : str or Path
            The file to write; ``alternatives`` and ``scores`` are ``;``-separated.

        Returns
        -------
        Path
            ``path``.
        """
        from pna_engine.atomic import write_text

        t = self.table.copy()
        t["alternatives"] = [";".join(a) for a in t["alternatives"]]
        t["scores"] = [";".join(f"{v:.2f}" for v in x) for x in t["scores"]]
        write_text(Path(path), t.to_csv(index=False))
        return Path(path)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready view (``pna qa --json``).

        Parameters
        ----------
        top : int or None, optional
            Only the first ``top`` rows of the ranked list; None (default): all.

        Returns
        -------
        dict
            ``results``, ``baseline_score``, ``summary``, ``headline`` (:attr:`headline`),
            ``evaluated``, ``seconds`` and ``tags_to_check`` (the table's rows as records).
        """
        t = self.table if top is None else self.table.head(top)
        return {"results": str(self.results), "baseline_score": self.baseline_score,
                "summary": self.summary, "headline": self.headline,
                "evaluated": self.evaluated, "seconds": round(self.seconds, 2),
                "tags_to_check": json.loads(t.to_json(orient="records"))}

    def map(self, top: int = 200) -> Any:
        """The ways to check, coloured by score range (offline map, escaped tooltips).

        The network's stress layers are added hidden.

        Parameters
        ----------
        top : int, optional
            Draw the first ``top`` rows of the ranked list (default 200).

        Returns
        -------
        pna_helpers.maps.OfflineMap
            A folium map.
        """
        import folium

        from pna_helpers import maps

        fr = self.frame().head(top)
        fr = fr[fr.geometry.notna()]
        m = maps.new_map(fr if len(fr) else None, canvas=self.ways is not None
                         and len(self.ways) > 5000)
        if self.ways is not None:
            maps.add_stress_layers(m, self.ways, show=False)
        if not len(fr):
            return m
        hi = float(fr["score_range"].fillna(0).max()) or 1.0

        def colour(v: Any) -> str:
            if v is None or v != v or v <= 0:
                return "#9e9e9e"
            x = v / hi
            return "#fdae61" if x < 0.34 else ("#f46d43" if x < 0.67 else "#a50026")

        fr = fr.assign(
            label=[_html.escape(str(n)) if isinstance(n, str) else "(unnamed)"
                   for n in fr["name"]],
            tag_text=[_html.escape(str(t)) for t in fr["tag"]],
            default_text=[_html.escape(str(d)) for d in fr["default_used"]],
            range_text=[f"{v:.2f}" if v == v else "not re-scored" for v in fr["score_range"]],
            rank_text=[str(i + 1) for i in range(len(fr))])
        data = maps.compact_geojson(fr, ["rank_text", "osm_id", "label", "tag_text",
                                         "default_text", "range_text", "score_range"],
                                    tolerance_m=0.5)
        folium.GeoJson(data, name="Tags to check", style_function=lambda f: {
            "color": colour(f["properties"].get("score_range")), "weight": 5, "opacity": 0.9},
            tooltip=folium.GeoJsonTooltip(
                fields=["rank_text", "label", "tag_text", "default_text", "range_text",
                        "osm_id"],
                aliases=["rank", "name", "missing tag", "default used", "score range",
                         "OSM way"])).add_to(m)
        maps.add_legend(m, "Score range of a missing tag", [
            ("#a50026", "largest"), ("#f46d43", "medium"), ("#fdae61", "small"),
            ("#9e9e9e", "none / not re-scored")])
        folium.LayerControl(collapsed=False).add_to(m)
        return m

    def report_section(self, top: int = 25) -> str:
        """HTML section: the summary and the top tags to check (escaped), with links.

        Parameters
        ----------
        top : int, optional
            Rows of the table (default 25); the map shows up to 200 (:meth:`map`).

        Returns
        -------
        str
            A ``<section class="pna-qa">`` element with the table and the map.
        """
        s = self.summary
        head = ("<h2>OSM tags to check</h2><p>" + _html.escape(
            f"{s['segments_on_defaults_share']:.0%} of the segments "
            f"({s['segments_on_defaults']:,} of {s['segments']:,}) and "
            f"{s['mileage_on_defaults_share']:.0%} of the stress mileage rest on a default "
            f"(speed {s['by_default']['speed']:,}, lanes {s['by_default']['lanes']:,}, width "
            f"{s['by_default']['width']:,} segments). Ranked by how far the overall score "
            f"({self.baseline_score:.2f}) could move with plausible values.") + "</p><p>"
            + _html.escape(self.headline) + "</p>")
        rows = []
        for _, r in self.table.head(top).iterrows():
            url = _html.escape(r["url"], quote=True)
            rng = f"{r['score_range']:.2f}" if r["score_range"] == r["score_range"] else "-"
            rows.append(
                f"<tr><td><a href=\"{url}\">{int(r['osm_id'])}</a></td>"
                f"<td>{_html.escape(_txt(r['name']))}</td>"
                f"<td>{_html.escape(str(r['tag']))}</td>"
                f"<td>{_html.escape(str(r['default_used']))}</td>"
                f"<td>{rng}</td><td>{_html.escape(_txt(r['note']))}</td></tr>")
        tab = ("<table><thead><tr><th>OSM way</th><th>name</th><th>missing tag</th>"
               "<th>default used</th><th>score range</th><th>note</th></tr></thead><tbody>"
               + "".join(rows) + "</tbody></table>")
        return f'<section class="pna-qa">{head}{tab}{self.map()._repr_html_()}</section>'

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

        write_text(Path(path), page(f"OSM tags to check: {self.results}", self.report_section()))
        return Path(path)


def _txt(v: Any) -> str:
    """A table value as text, '' for NULL (None/NaN)."""
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def _summary(base: Any, d: pd.DataFrame) -> dict[str, Any]:
    import shapely

    from pna_engine.scores import METERS_PER_MILE

    length = shapely.length(np.asarray(base.ways.geometry.values)) / METERS_PER_MILE
    dirs = (~np.isnan(base.stress["ft_seg_stress"])).astype(float) + \
        (~np.isnan(base.stress["tf_seg_stress"])).astype(float)
    miles = length * dirs  # stress mileage: each direction with a stress counts
    on = d["any_default"].to_numpy()
    total = float(miles.sum())
    return {
        "segments": int(len(d)), "segments_on_defaults": int(on.sum()),
        "segments_on_defaults_share": float(on.mean()) if len(d) else 0.0,
        "stress_miles": round(total, 3), "stress_miles_on_defaults": round(float(miles[on].sum()), 3),
        "mileage_on_defaults_share": float(miles[on].sum() / total) if total else 0.0,
        "by_default": {"speed": int(d["speed_default"].notna().sum()),
                       "lanes": int(d["lanes_default"].notna().sum()),
                       "width": int(d["width_default"].notna().sum()),
                       "parking": int(d["parking_missing"].sum()),
                       "oneway": int(d["oneway_missing"].sum())},
    }


def osm_qa(results: Any, workers: int | None = None, baseline: Any = None,
           alternatives: dict[str, tuple[str, tuple[str, ...]]] | None = None,
           progress: bool = False) -> QA:
    """Rank the missing OSM tags of a result by how far they could move the overall score.

    Parameters
    ----------
    results : str, Path or Results
        A PNA result with ``run.json``.
    workers : int, optional
        Engine worker processes for the baseline run (default: the run's setting).
    baseline : pna_engine.incremental.Baseline, optional
        An in-memory baseline to reuse (unchanged).
    alternatives : dict, optional
        Replaces :data:`ALTERNATIVES` entries (``{"speed": ("maxspeed", ("30", "50"))}``).
    progress : bool
        Show a tqdm bar over the re-scorings (default False).

    Returns
    -------
    QA
        Its ``table`` has one row per way and missing tag, largest score range first.

    Raises
    ------
    InputError
        The results cannot be loaded, or their run's inputs are unusable.
    """
    from pna_engine.defaults import stress_defaults
    from pna_helpers.plan import _way_geometries, baseline_for

    t0 = time.perf_counter()
    if baseline is None:
        res, base = baseline_for(results, workers)
        location = res.location
    else:
        base, location = baseline, results
    alts = {**ALTERNATIVES, **(alternatives or {})}
    d = stress_defaults(base.attrs, base.residential_default)
    start = float(base.overall_score or 0.0)
    osm = base.osm_id
    w = base.attrs
    import shapely

    seg_len = shapely.length(np.asarray(base.ways.geometry.values))
    items: list[dict[str, Any]] = []
    kinds = {"speed": d["speed_default"], "lanes": d["lanes_default"],
             "width": d["width_default"], "parking": d["parking_missing"],
             "oneway": d["oneway_missing"]}
    for kind, col in kinds.items():
        v = col.to_numpy()
        has = (v.astype(bool) if v.dtype == bool else ~np.isnan(v)) & ~np.isnan(osm)
        if not has.any():
            continue
        df = pd.DataFrame({"osm_id": osm[has].astype(np.int64), "value": v[has],
                           "len": seg_len[has], "name": w["name"].astype(object).to_numpy()[has],
                           "fc": w["functional_class"].astype(object).to_numpy()[has]})
        for wid, g in df.groupby("osm_id", sort=True):
            used = g["value"].iloc[0]
            if kind == "speed":
                default = f"{used:g} mph"
            elif kind == "lanes":
                default = f"{used:g} per direction"
            elif kind == "width":
                default = f"{used:g} ft"
            else:
                default = "none"
            tag, values = alts.get(kind, (kind, ()))
            names = g["name"].dropna()
            items.append({"osm_id": int(wid), "kind": kind, "tag": tag, "default_used": default,
                          "alternatives": list(values), "segments": int(len(g)),
                          "length_km": float(g["len"].sum()) / 1000.0,
                          "name": names.iloc[0] if len(names) else None,
                          "functional_class": g["fc"].iloc[0], "note": NOTES.get(kind)})
    # every (item, value) edit, tag -> stress in chunks, then rescoring where stress moved
    jobs = [(i, val) for i, it in enumerate(items) for val in it["alternatives"]
            if it["kind"] in alts]
    scores: dict[int, list[float]] = {i: [] for i in range(len(items))}
    per_value: dict[tuple[int, str], float] = {}
    evaluated = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="alternatives", unit="edit")
    for lo in range(0, len(jobs), CHUNK):
        chunk = jobs[lo:lo + CHUNK]
        edits = [{items[i]["osm_id"]: {items[i]["tag"]: val}} for i, val in chunk]
        pre = base.stress_for_edits_many(edits)
        for (i, val), e, p in zip(chunk, edits, pre):
            if bar is not None:
                bar.update(1)
            if isinstance(p, Exception):
                items[i]["note"] = str(p)
                continue
            if len(p[0]["rows"]) == 0:
                score = start
            else:
                r = base.rescore(way_tag_edits=(e, p))
                evaluated += 1
                score = float(r.overall_score or 0.0)
            scores[i].append(score)
            per_value[(i, val)] = score
    if bar is not None:
        bar.close()
    for i, it in enumerate(items):
        s = scores[i]
        if s:
            it["score_min"] = min([start, *s])
            it["score_max"] = max([start, *s])
            it["score_range"] = round(it["score_max"] - it["score_min"], 4)
        else:
            it["score_min"] = it["score_max"] = it["score_range"] = np.nan
        it["url"] = f"https://www.openstreetmap.org/way/{it['osm_id']}"
        it["scores"] = [per_value.get((i, v), np.nan) for v in it["alternatives"]]
    cols = ["osm_id", "url", "name", "functional_class", "tag", "default_used",
            "alternatives", "scores", "score_min", "score_max", "score_range", "segments", "length_km",
            "note"]
    table = pd.DataFrame(items, columns=cols)
    if len(table):
        table = table.sort_values(["score_range", "length_km", "osm_id"],
                                  ascending=[False, False, True], na_position="last")
        table = table.reset_index(drop=True)
    geoms = _way_geometries(base, table["osm_id"].unique().tolist()) if len(table) else None
    return QA(results=location, baseline_score=start, table=table, summary=_summary(base, d),
              evaluated=evaluated, seconds=time.perf_counter() - t0, geometries=geoms,
              ways=base.ways)


# --------------------------------------------------------------------------- CLI
def register(subparsers: Any) -> None:
    """Add ``pna qa`` to the ``pna`` command's subparsers.

    Parameters
    ----------
    subparsers : Any
        The ``add_subparsers()`` object of the ``pna`` parser.
    """
    p = subparsers.add_parser(
        "qa", help="OSM tags to check first, ranked by how far they could move the score",
        description="Re-score every way whose stress rests on a default with plausible tag "
                    "values (incremental re-scoring) and rank the missing tags.")
    p.add_argument("results", help="PNA results folder or job id (with run.json)")
    p.add_argument("--json", action="store_true", help="print the summary and list as JSON")
    p.add_argument("-o", "--output", default=None, help="write the list as GeoJSON")
    p.add_argument("--csv", default=None, help="write the list as CSV")
    p.add_argument("--report", default=None, help="write an HTML report section page")
    p.add_argument("--top", type=int, default=None,
                   help=f"only the first N rows of the ranked list on stdout (printed list: "
                        f"default {TOP_PRINTED}; --json: default all); files get every row")
    p.add_argument("--workers", type=int, default=None, help="engine worker processes")
    p.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    """Entry of ``pna qa``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``pna qa`` arguments.

    Returns
    -------
    int
        The exit code, 0.

    ``--top N`` keeps the first N rows of the ranked list on stdout: the printed list and the
    JSON (``tags_to_check``). Without it the printed list shows :data:`TOP_PRINTED` rows and
    the JSON every row. The files (``--csv``, ``-o``, ``--report``) always hold the whole list.

    Raises
    ------
    InputError
        A negative ``--top``, or unusable results.
    """
    if args.top is not None and args.top < 0:
        raise InputError(f"--top must be 0 or more rows, got {args.top}: give how many of the "
                         "ranked tags to keep (or leave --top out for all)")
    q = osm_qa(args.results, workers=args.workers, progress=sys.stderr.isatty())
    if args.output:
        q.to_geojson(args.output)
    if args.csv:
        q.to_csv(args.csv)
    if args.report:
        q.save_report(args.report)
    if args.json:
        print(json.dumps(q.to_dict(top=args.top), indent=1, default=str))
        return 0
    s = q.summary
    print(f"{s['segments_on_defaults_share']:.0%} of segments and "
          f"{s['mileage_on_defaults_share']:.0%} of stress mileage rest on a default; "
          f"overall score {q.baseline_score:.2f}; {q.evaluated} re-scorings, {q.seconds:.1f} s")
    print(q.headline)
    for k, r in q.table.head(TOP_PRINTED if args.top is None else args.top).iterrows():
        rng = f"{r['score_range']:.2f}" if r["score_range"] == r["score_range"] else "-"
        print(f"{k + 1:>3}  {r['url']:45} {(_txt(r['name']) or '(unnamed)')[:25]:25} "
              f"{r['tag']:20} default {r['default_used']:16} range {rng}")
    return 0
