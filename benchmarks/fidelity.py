"""Compare PNA's outputs with the reference tool's export (fidelity check).

    python benchmarks/fidelity.py REFERENCE_DIR OUR_DIR
    python benchmarks/fidelity.py --run CASE_DIR OUR_DIR   # run the engine first (up to stress)

``REFERENCE_DIR`` is a reference export (e.g. ``/work/shared/oracle/helsinki/reference``, or
the case folder holding ``reference/``). ``OUR_DIR`` holds our ``neighborhood_ways.geojson``.
With ``--run``, ``CASE_DIR/inputs/run.args`` gives the engine arguments; the engine runs up to
the stress phase and the ways GeoJSON is written to ``OUR_DIR``.

Each comparison is one function (``compare_ways`` here; other comparisons can be added next to
it) returning a dict of rates and a list of disagreements; :func:`main` prints them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

STRESS_COLUMNS = ["ft_seg_stress", "ft_int_stress", "tf_seg_stress", "tf_int_stress"]
FEATURE_COLUMNS = ["functional_class", "speed_limit", "one_way_car", "one_way", "ft_bike_infra",
                   "tf_bike_infra", "ft_lanes", "tf_lanes", "width_ft", "path_id"]
MATCH_TOLERANCE_M = 1.0


def _reference_dir(p: Path) -> Path:
    return p / "reference" if (p / "reference" / "neighborhood_ways.geojson").exists() else p


def _norm(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    try:
        if v is not __import__("pandas").NA and float(v) == int(float(v)):
            return int(float(v))
    except (TypeError, ValueError):
        pass
    return None if v is __import__("pandas").NA else v


def match_ways(ref: Any, ours: Any, tol: float = MATCH_TOLERANCE_M) -> list[tuple[int, int]]:
    """Pairs (ref row, our row): same osm_id and geometries within ``tol`` metres (Hausdorff),
    each row used once, closest first."""
    import shapely

    pairs = []
    by_osm: dict[int, list[int]] = {}
    for j, o in enumerate(ours["osm_id"].to_numpy(dtype=np.int64)):
        by_osm.setdefault(int(o), []).append(j)
    used: set[int] = set()
    rg, og = ref.geometry.values, ours.geometry.values
    for i, o in enumerate(ref["osm_id"].to_numpy(dtype=np.int64)):
        best, best_d = None, tol
        for j in by_osm.get(int(o), []):
            if j in used:
                continue
            d = shapely.hausdorff_distance(rg[i], og[j])
            if d <= best_d:
                best, best_d = j, d
        if best is not None:
            used.add(best)
            pairs.append((i, best))
    return pairs


def compare_ways(ref_dir: str | Path, our_dir: str | Path) -> dict[str, Any]:
    """Compare ``neighborhood_ways.geojson``: segment matching and per-column agreement.

    Returns a dict with ``n_ref``, ``n_ours``, ``matched``, ``rates`` (column -> share of
    reference segments with an identical value; unmatched segments count as disagreeing),
    ``unmatched_ref``, ``unmatched_ours`` and ``disagreements`` (one dict per segment with a
    stress difference: osm_id, name, class, ours/ref values).
    """
    import geopandas as gpd

    ref = gpd.read_file(Path(_reference_dir(Path(ref_dir))) / "neighborhood_ways.geojson")
    ours = gpd.read_file(Path(our_dir) / "neighborhood_ways.geojson")
    crs = ref.estimate_utm_crs()
    ref, ours = ref.to_crs(crs), ours.to_crs(crs)
    pairs = match_ways(ref, ours)
    ri = np.array([p[0] for p in pairs], dtype=int)
    oi = np.array([p[1] for p in pairs], dtype=int)
    rates: dict[str, float] = {}
    disagreements = []
    same_all = np.ones(len(pairs), dtype=bool)
    for col in STRESS_COLUMNS + FEATURE_COLUMNS:
        if col not in ref.columns or col not in ours.columns:
            continue
        rv = [_norm(v) for v in ref[col].to_numpy(dtype=object)[ri]]
        ov = [_norm(v) for v in ours[col].to_numpy(dtype=object)[oi]]
        same = np.array([a == b for a, b in zip(rv, ov)], dtype=bool)
        rates[col] = float(same.sum()) / max(len(ref), 1)
        if col in STRESS_COLUMNS:
            same_all &= same
    rates["all_stress"] = float(same_all.sum()) / max(len(ref), 1)
    for k in np.flatnonzero(~same_all):
        r, o = ref.iloc[ri[k]], ours.iloc[oi[k]]
        disagreements.append({
            "osm_id": int(r["osm_id"]), "name": r.get("name"),
            "class_ref": r.get("functional_class"), "class_ours": o.get("functional_class"),
            **{f"{c}": (_norm(o[c]), _norm(r[c])) for c in STRESS_COLUMNS},
        })
    matched_r = set(ri.tolist())
    matched_o = set(oi.tolist())
    return {
        "n_ref": len(ref), "n_ours": len(ours), "matched": len(pairs), "rates": rates,
        "unmatched_ref": [(int(ref.iloc[i]["osm_id"]), ref.iloc[i].get("name"),
                           ref.iloc[i].get("functional_class"))
                          for i in range(len(ref)) if i not in matched_r],
        "unmatched_ours": [(int(ours.iloc[j]["osm_id"]), ours.iloc[j].get("name"),
                            ours.iloc[j].get("functional_class"))
                           for j in range(len(ours)) if j not in matched_o],
        "disagreements": disagreements,
    }


INTERSECTION_COLUMNS = ["legs", "signalized", "stops", "rrfb", "island"]


def compare_intersections(ref_dir: str | Path, our_dir: str | Path) -> dict[str, Any]:
    """Compare ``neighborhood_ways_intersections.geojson`` matched by node ``osm_id``.

    Returns ``n_ref``, ``n_ours``, ``matched``, ``rates`` (column -> share of reference rows
    with the same value) and ``disagreements`` (osm_id, column, ours, reference).
    """
    import geopandas as gpd

    name = "neighborhood_ways_intersections.geojson"
    ref = gpd.read_file(Path(_reference_dir(Path(ref_dir))) / name)
    ours_path = Path(our_dir) / name
    if not ours_path.exists():
        return {"n_ref": len(ref), "n_ours": 0, "matched": 0, "rates": {}, "disagreements": []}
    ours = gpd.read_file(ours_path)
    m = ref.drop(columns="geometry").merge(ours.drop(columns="geometry"), on="osm_id",
                                           suffixes=("_ref", "_ours"))
    rates, dis = {}, []
    for col in INTERSECTION_COLUMNS:
        a = [_norm(v) for v in m[f"{col}_ref"].to_numpy(dtype=object)]
        b = [_norm(v) for v in m[f"{col}_ours"].to_numpy(dtype=object)]
        same = [x == y for x, y in zip(a, b)]
        rates[col] = sum(same) / max(len(ref), 1)
        dis += [(int(o), col, y, x) for o, x, y, s in zip(m["osm_id"], a, b, same) if not s]
    return {"n_ref": len(ref), "n_ours": len(ours), "matched": len(m), "rates": rates,
            "disagreements": dis}


def print_intersections_report(res: dict[str, Any]) -> None:
    """Print :func:`compare_intersections` results."""
    print(f"intersections: reference {res['n_ref']}, ours {res['n_ours']}, "
          f"matched {res['matched']}")
    for col, rate in res["rates"].items():
        print(f"  {col:22s} {rate:7.2%}")
    for d in res["disagreements"]:
        print("    (osm_id, column, ours, reference)", d)


def print_ways_report(res: dict[str, Any], tags: Any = None) -> None:
    """Print :func:`compare_ways` results; ``tags`` (osm_id -> dict) adds the OSM tags."""
    print(f"ways: reference {res['n_ref']}, ours {res['n_ours']}, matched {res['matched']} "
          f"({res['matched'] / max(res['n_ref'], 1):.1%} of reference)")
    for col, rate in res["rates"].items():
        print(f"  {col:22s} {rate:7.2%}")
    for label in ("unmatched_ref", "unmatched_ours"):
        if res[label]:
            print(f"{label} ({len(res[label])}):")
            for row in res[label]:
                print("   ", row)
    if res["disagreements"]:
        print(f"stress disagreements ({len(res['disagreements'])}): (ours, reference)")
        for d in res["disagreements"]:
            print("   ", d)
            if tags is not None and d["osm_id"] in tags:
                print("       tags:", tags[d["osm_id"]])


# --------------------------------------------------------------------------- running the engine
def params_from_run_args(case_dir: Path, output: str | Path) -> Any:
    """Params from ``CASE_DIR/inputs/run.args`` (paths relative to the inputs folder)."""
    from pna_engine.cli import build_parser, params_from_args

    inputs = case_dir / "inputs" if (case_dir / "inputs" / "run.args").exists() else case_dir
    lines = [ln.strip() for ln in (inputs / "run.args").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    argv = ["run", "--output", str(output)]
    path_opts = {"--boundary", "--osm", "--population", "--jobs"}
    i = 0
    while i < len(lines):
        opt = lines[i]
        if i + 1 < len(lines) and not lines[i + 1].startswith("--"):
            val = lines[i + 1]
            if opt in path_opts:
                val = str((inputs / val).resolve())
            argv += [opt, val]
            i += 2
        else:
            argv.append(opt)
            i += 1
    return params_from_args(build_parser().parse_args(argv))


def run_to_stress(case_dir: str | Path, out_dir: str | Path) -> Any:
    """Run the engine up to stress and write ``neighborhood_ways.geojson`` to ``out_dir``."""
    from pna_engine import pipeline

    out_dir = Path(out_dir)
    params = params_from_run_args(Path(case_dir), out_dir / "engine")
    state = pipeline.run(params, stop_after="stress")
    write_ways_geojson(state.ways, out_dir / "neighborhood_ways.geojson")
    write_ways_geojson(state.intersections, out_dir / "neighborhood_ways_intersections.geojson")
    return state


def write_ways_geojson(ways: Any, path: str | Path) -> None:
    """Write a table in EPSG:4326 (as the reference export does), atomically."""
    from pna_engine.atomic import atomic_path

    w = ways.copy()
    if "tdg_id" in w.columns:
        w["tdg_id"] = w["tdg_id"].astype(str)
    with atomic_path(path) as tmp:
        w.to_crs("EPSG:4326").to_file(tmp, driver="GeoJSON")


def _osm_tags(state: Any) -> dict[int, dict[str, str]]:
    if state is None or state.osm is None:
        return {}
    lines = state.osm.lines
    cols = [c for c in lines.columns if c not in ("osm_id", "geometry")]
    out = {}
    for oid, row in zip(lines["osm_id"].to_numpy(dtype=np.int64), lines[cols].to_numpy(dtype=object)):
        out[int(oid)] = {c: v for c, v in zip(cols, row) if v is not None}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", help="reference export folder (or case folder with reference/)")
    ap.add_argument("ours", help="our output folder (neighborhood_ways.geojson)")
    ap.add_argument("--run", action="store_true",
                    help="REFERENCE is a case folder: run the engine (to stress) into OURS first")
    a = ap.parse_args(argv)
    state = None
    if a.run:
        state = run_to_stress(a.reference, a.ours)
        print("engine timings:", state.timings)
    res = compare_ways(a.reference, a.ours)
    print_ways_report(res, _osm_tags(state))
    print_intersections_report(compare_intersections(a.reference, a.ours))
    ok = res["rates"].get("all_stress", 0) >= 0.995
    print("PASS" if ok else "FAIL", f"(identical stress on {res['rates'].get('all_stress', 0):.2%}"
          " of reference segments; target 99.5%)")
    if (Path(a.ours) / "neighborhood_overall_scores.csv").exists():  # full export: scores (H3)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import fidelity_scores

        ref = Path(a.reference)
        case = ref.parent if (ref / "neighborhood_ways.geojson").exists() else ref
        sres = fidelity_scores.from_export(a.ours, case)
        print(fidelity_scores.report("scores", sres))
        ok = ok and sres["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
