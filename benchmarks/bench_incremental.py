"""Incremental re-scoring (``pna_engine.incremental``) next to a full engine run.

For each case: the full run end to end in a fresh process (as a user or a scenario pays it),
the one-off cost of holding the baseline in memory, then one changed OSM way at a time
(``--ways`` high-stress ways, chosen with a fixed seed): its segments set to low stress
("stress"), and the same way with its planner treatment as OSM tag edits ("tags": features and
stress recomputed by the engine's rules). Prints medians and the speed-up over the full run.

    python benchmarks/bench_incremental.py                      # Liechtenstein + 1M-people city
    python benchmarks/bench_incremental.py --case liechtenstein --ways 30
    python benchmarks/bench_incremental.py --case city-1m --check   # + one full-run comparison

Liechtenstein needs ``../shared`` (skipped cleanly without it); the synthetic city is generated
once into ``outputs/bench/synthetic/`` (reused). Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib  # noqa: E402


def _case_args(case: str) -> list[str] | None:
    if case == "liechtenstein":
        f = benchlib.SHARED / "data" / "liechtenstein" / "run.args"
        return benchlib.read_args_file(f) if f.exists() else None
    if case == "city-1m":
        import bench_scaling

        city = bench_scaling.ensure_city(1_000_000, 1)
        d = bench_scaling.city_dir(1_000_000, 1)
        return benchlib.read_args_file(d / "run.args") if (d / "run.args").exists() \
            else city.get("args")
    raise SystemExit(f"unknown case {case}")


def _params(args: list[str], output: Path) -> Any:
    from pna_engine.cli import build_parser, params_from_args

    ns = build_parser().parse_args(["run", *args, "--output", str(output), "--quiet"])
    return params_from_args(ns)


def bench_case(case: str, n_ways: int, seed: int, check: bool) -> dict[str, Any] | None:
    import numpy as np

    from pna_engine.incremental import STRESS_COLUMNS, Baseline
    from pna_helpers.plan import candidates

    args = _case_args(case)
    if args is None:
        print(f"{case}: skipped (inputs not on this machine)")
        return None
    out = benchlib.outputs_dir() / "runs" / f"incremental-{case}"
    full = benchlib.run_engine(args, out)
    if not full["ok"]:
        print(f"{case}: full run failed: {full.get('error')}")
        return None
    params = _params(args, out)
    t0 = time.perf_counter()
    base = Baseline.from_params(params)
    t_base = time.perf_counter() - t0
    cands = candidates(base)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(cands), size=min(n_ways, len(cands)), replace=False)
    t_stress, t_tags, blocks = [], [], []
    for i in pick:
        ids = cands.at[i, "osm_ids"]
        rows = base.way_rows(ids)
        ch = {int(base.road_id[r]): {c: 1.0 for c in STRESS_COLUMNS} for r in rows}
        t = time.perf_counter()
        r = base.rescore(ch)
        t_stress.append(time.perf_counter() - t)
        blocks.append(len(r.blocks))
        t = time.perf_counter()
        try:
            base.rescore(way_tag_edits=cands.at[i, "edits"])
            t_tags.append(time.perf_counter() - t)
        except Exception:  # noqa: BLE001 - a shape change: not incremental
            pass
    res = {
        "case": case, "full_run_s": full["wall_s"],
        "full_network_to_scores_s": round(benchlib.phase_sum(full.get("timings", {}),
                                                             benchlib.NETWORK_TO_SCORES), 3),
        "baseline_s": round(t_base, 2), "ways": len(pick), "candidates": len(cands),
        "stress_median_s": statistics.median(t_stress), "stress_p90_s": float(
            np.percentile(t_stress, 90)),
        "tags_median_s": statistics.median(t_tags) if t_tags else None,
        "blocks_median": statistics.median(blocks), "blocks_max": max(blocks),
        "n_blocks": base.nb, "load": os.getloadavg()[0],
    }
    res["speedup_stress"] = res["full_run_s"] / res["stress_median_s"]
    res["speedup_tags"] = res["full_run_s"] / res["tags_median_s"] if t_tags else None
    if check:
        import dataclasses

        from pna_engine import pipeline

        i = pick[0]
        r = base.rescore(way_tag_edits=cands.at[i, "edits"])
        s = pipeline.run(dataclasses.replace(params, output=str(out) + "-check",
                                             way_tag_edits=cands.at[i, "edits"]),
                         stop_after="scores")
        res["check_same_overall"] = s.scores.overall_scores.equals(r.overall_scores)
        res["check_same_pairs"] = bool(np.array_equal(s.connectivity.low_stress,
                                                      r.connectivity().low_stress))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["liechtenstein", "city-1m", "all"], default="all")
    ap.add_argument("--ways", type=int, default=20, help="changed ways measured per case")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--check", action="store_true", help="compare one change with a full run")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)
    cases = ["liechtenstein", "city-1m"] if a.case == "all" else [a.case]
    rows, results = [], []
    for c in cases:
        r = bench_case(c, a.ways, a.seed, a.check)
        if r is None:
            continue
        results.append(r)
        rows.append([c, f"{r['n_blocks']:,}", r["full_run_s"], r["baseline_s"],
                     f"{r['stress_median_s'] * 1000:.0f} ms", f"{r['speedup_stress']:.0f}x",
                     f"{r['tags_median_s'] * 1000:.0f} ms" if r["tags_median_s"] else "-",
                     f"{r['speedup_tags']:.0f}x" if r["speedup_tags"] else "-",
                     f"{r['blocks_median']:.0f} / {r['blocks_max']}",
                     r.get("check_same_overall", "-"), f"{r['load']:.1f}"])
    print(benchlib.table(rows, ["case", "blocks", "full run s", "baseline s", "1 way (stress)",
                                "speed-up", "1 way (tags)", "speed-up", "blocks redone med/max",
                                "= full run", "load"]))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
