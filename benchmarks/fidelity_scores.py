"""Score fidelity against the reference tool (the scores part of the fidelity check).

Two modes, both printing the same figures (overall score difference, worst category
difference, share of blocks whose overall score is within +/-1, pairs agreement):

* ``--from-reference``: start from the reference's own ways / intersections / blocks /
  destinations (``<case>/reference``) and run only our network -> scores phases. This isolates
  the network, connectivity and scoring code from the OSM import and stress rules.
* ``--ours DIR``: compare an export folder written by ``pna-engine run`` (with the case's
  ``inputs/run.args``) with the reference export.

Usage::

    python benchmarks/fidelity_scores.py --from-reference ../shared/oracle/helsinki
    python benchmarks/fidelity_scores.py --from-reference ../shared/oracle/helsinki-us
    python benchmarks/fidelity_scores.py --ours outputs/helsinki ../shared/oracle/helsinki

Targets: overall within +/-0.5, every category within +/-1, per-block overall within +/-1 on
>= 98 % of blocks.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CATEGORY_IDS = ("people", "opportunity", "core_services", "retail", "recreation", "transit")


def _ids(v: Any) -> list[str]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    if isinstance(v, str):
        v = json.loads(v) if v.startswith("[") else v.strip("{}").split(",")
    return [str(x) for x in v if str(x) != ""]


def state_from_reference(case_dir: str | Path, utm_epsg: int = 32635) -> SimpleNamespace:
    """A run state built from the reference's own tables (ways, blocks, destinations, jobs)."""
    import geopandas as gpd
    import shapely

    from pna_engine.params import Params

    case = Path(case_dir)
    ref = case / "reference"
    ways = gpd.read_file(ref / "neighborhood_ways.geojson").to_crs(utm_epsg)
    ints = gpd.read_file(ref / "neighborhood_ways_intersections.geojson").to_crs(utm_epsg)
    boundary = gpd.read_file(ref / "neighborhood_boundary.geojson").to_crs(utm_epsg)
    b = pd.read_csv(
        ref / "extras" / f"census_blocks_after_import_{utm_epsg}.csv", dtype={"geoid20": str}
    )
    blocks = gpd.GeoDataFrame(
        b.drop(columns=f"wkt_{utm_epsg}"), geometry=shapely.from_wkt(b[f"wkt_{utm_epsg}"]),
        crs=utm_epsg,
    )  # fmt: skip
    from pna_engine.scores import DESTINATION_CATEGORIES

    dests = {}
    for cat in DESTINATION_CATEGORIES:
        d = gpd.read_file(ref / f"neighborhood_{cat}.geojson")
        if len(d):
            d = d.to_crs(utm_epsg)
        d["blockid20"] = [_ids(v) for v in d["blockid20"]] if len(d) else []
        dests[cat] = d.drop(
            columns=[c for c in ("pop_low_stress", "pop_high_stress", "pop_score") if c in d]
        )
    jobs = None
    od = sorted(glob.glob(str(case / "inputs" / "*_od_*_JT00_*.csv")))
    if od:
        t = pd.concat([pd.read_csv(f, dtype={"w_geocode": str}) for f in od])
        jobs = (
            t.groupby("w_geocode")["S000"]
            .sum()
            .rename("jobs")
            .rename_axis("blockid20")
            .reset_index()
        )
    return SimpleNamespace(
        params=Params(boundary=str(case), output=str(case)),
        ways=ways,
        intersections=ints,
        boundary=boundary,
        blocks=blocks,
        destinations=dests,
        jobs=jobs,
        paths=None,
        counts={},
        network=None,
        connectivity=None,
        scores=None,
    )


def run_phases(s: SimpleNamespace) -> dict[str, float]:
    """Our network -> scores phases on a state; returns the seconds per phase."""
    from pna_engine import blocks, connectivity, network, scores

    t: dict[str, float] = {}
    for name, fn in (
        ("network", lambda: setattr(s, "network", network.build_network(s))),
        ("blocks", lambda: setattr(s, "blocks", blocks.assign_roads(s))),
        ("connectivity", lambda: setattr(s, "connectivity", connectivity.compute_connectivity(s))),
        ("scores", lambda: setattr(s, "scores", scores.compute_scores(s))),
    ):
        t0 = time.perf_counter()
        fn()
        t[name] = time.perf_counter() - t0
    return t


def compare(
    ours_overall: pd.DataFrame,
    ours_blocks: pd.DataFrame,
    ref_dir: str | Path,
    ours_pairs: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Compare overall/category scores, block overall scores and (optionally) pairs.

    ``ours_overall`` has ``score_id, score_normalized``; ``ours_blocks`` has ``geoid20,
    overall_score``; ``ours_pairs`` the export columns of the connected pairs.
    """
    import geopandas as gpd

    ref = Path(ref_dir)
    ro = pd.read_csv(ref / "neighborhood_overall_scores.csv")
    rb = gpd.read_file(ref / "neighborhood_census_blocks.geojson")
    mine = dict(
        zip(
            ours_overall["score_id"],
            pd.to_numeric(ours_overall["score_normalized"], errors="coerce"),
        )
    )
    theirs = dict(zip(ro["score_id"], pd.to_numeric(ro["score_normalized"], errors="coerce")))
    out: dict[str, Any] = {
        "overall_ours": mine.get("overall_score"),
        "overall_ref": theirs.get("overall_score"),
    }
    out["overall_diff"] = abs(float(mine["overall_score"]) - float(theirs["overall_score"]))
    cats = {c: (mine.get(c), theirs.get(c)) for c in CATEGORY_IDS}
    out["categories"] = cats
    diffs = [abs(np.nan_to_num(float(a)) - np.nan_to_num(float(b))) for a, b in cats.values()]
    out["worst_category_diff"] = max(diffs)
    m = pd.DataFrame({"geoid20": rb["geoid20"].astype(str), "ref": pd.to_numeric(rb["overall_score"], errors="coerce")}).merge(
        pd.DataFrame({"geoid20": ours_blocks["geoid20"].astype(str), "ours": pd.to_numeric(ours_blocks["overall_score"], errors="coerce")}),
        on="geoid20", how="outer",
    )  # fmt: skip
    both_null = m["ref"].isna() & m["ours"].isna()
    close = (m["ref"] - m["ours"]).abs() <= 1.0
    out["blocks"] = len(m)
    out["blocks_within_1"] = float((close | both_null).mean()) if len(m) else 1.0
    if ours_pairs is not None:
        rp = pd.read_csv(ref / "neighborhood_connected_census_blocks.csv", dtype=str)
        k = ["source_blockid20", "target_blockid20"]
        op = ours_pairs[k].astype(str)
        j = rp.merge(op.assign(_o=1), on=k, how="outer", indicator=True)
        out["pairs_ref"] = len(rp)
        out["pairs_ours"] = len(op)
        out["pairs_common"] = int((j["_merge"] == "both").sum())
    out["ok"] = (
        out["overall_diff"] <= 0.5
        and out["worst_category_diff"] <= 1.0
        and out["blocks_within_1"] >= 0.98
    )
    return out


def report(name: str, r: dict[str, Any]) -> str:
    lines = [
        f"{name}: overall {r['overall_ours']} vs reference {r['overall_ref']} "
        f"(diff {r['overall_diff']:.2f}); worst category diff {r['worst_category_diff']:.2f}; "
        f"blocks within +/-1: {100 * r['blocks_within_1']:.1f} % of {r['blocks']}"
    ]
    for c, (a, b) in r["categories"].items():
        lines.append(f"    {c:<15} ours {a!s:>10}  reference {b!s:>10}")
    if "pairs_ref" in r:
        lines.append(
            f"    pairs: reference {r['pairs_ref']}, ours {r['pairs_ours']}, common {r['pairs_common']}"
        )
    lines.append("    " + ("PASS" if r["ok"] else "FAIL"))
    return "\n".join(lines)


def from_reference(case_dir: str | Path) -> dict[str, Any]:
    """Run our phases on the reference's tables and compare (see module docstring)."""
    s = state_from_reference(case_dir)
    timings = run_phases(s)
    blocks = pd.DataFrame(
        {"geoid20": s.blocks["geoid20"], "overall_score": s.blocks["overall_score"]}
    )
    pairs = s.connectivity.pairs_frame(s.blocks["geoid20"])
    r = compare(s.scores.overall_scores, blocks, Path(case_dir) / "reference", pairs)
    r["timings_s"] = timings
    return r


def from_export(ours_dir: str | Path, case_dir: str | Path) -> dict[str, Any]:
    """Compare an export folder of ours with the reference export of a case."""
    import geopandas as gpd

    ours = Path(ours_dir)
    ov = pd.read_csv(ours / "neighborhood_overall_scores.csv")
    bl = gpd.read_file(ours / "neighborhood_census_blocks.geojson")
    pairs_file = next(iter(sorted(ours.glob("neighborhood_connected_census_blocks.csv*"))), None)
    pairs = pd.read_csv(pairs_file, dtype=str) if pairs_file else None
    return compare(ov, bl, Path(case_dir) / "reference", pairs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Score fidelity against the reference tool.")
    ap.add_argument("--from-reference", nargs="*", default=None, metavar="CASE_DIR")
    ap.add_argument("--ours", nargs=2, default=None, metavar=("EXPORT_DIR", "CASE_DIR"))
    a = ap.parse_args(argv)
    ok = True
    for case in a.from_reference or []:
        r = from_reference(case)
        print(report(f"{Path(case).name} (from reference ways)", r))
        print("    phase seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in r["timings_s"].items()))
        ok &= r["ok"]
    if a.ours:
        r = from_export(*a.ours)
        print(report(f"{Path(a.ours[1]).name} (our export)", r))
        ok &= r["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
