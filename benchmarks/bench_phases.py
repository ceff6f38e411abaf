"""Wall time and peak memory of every engine phase on one input.

Usage::

    python benchmarks/bench_phases.py --args-file ../shared/data/liechtenstein/run.args
    python benchmarks/bench_phases.py --repeat 3 -- --boundary B.shp --osm O.pbf ...
    python benchmarks/bench_phases.py --args-file run.args --profile   # + cProfile hot spots

Each repeat runs in a fresh process (benchlib.run_engine); times are medians of the repeats.
``--profile`` runs once more under cProfile (with ``--workers 1`` unless ``--workers`` is given,
so the connectivity searches are seen in the profile) and prints the top functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

from pna_engine import PHASES  # noqa: E402


def measure(args: list[str], name: str, repeat: int = 1, workers: int | None = None,
            profile: bool = False) -> dict[str, Any]:
    """Run the engine on ``args`` ``repeat`` times; return the (median) measures."""
    out = benchlib.outputs_dir() / "runs" / name
    res = benchlib.run_engine_repeated(args, out, repeat=repeat, workers=workers)
    res["name"] = name
    if profile and res.get("ok"):
        prof = benchlib.outputs_dir() / f"{name}.prof"
        pres = benchlib.run_engine(args, out, workers=workers if workers is not None else 1,
                                   profile=prof)
        if pres.get("ok"):
            res["profile"] = str(prof)
            res["hot_spots"] = benchlib.print_profile(prof)
    return res


def phase_table(res: dict[str, Any]) -> str:
    """Per-phase table: seconds, share of the engine total, peak memory during the phase."""
    t = res.get("timings", {})
    total = t.get("total") or sum(t.get(p, 0.0) for p in PHASES) or 1.0
    cpu = res.get("phase_cpu_s", {})
    rows = [[p, t.get(p), 100.0 * t.get(p, 0.0) / total, cpu.get(p),
             res.get("phase_tree_mb", {}).get(p)] for p in PHASES if p in t]
    rows.append(["engine total", t.get("total"), 100.0, sum(cpu.values()) if cpu else None,
                 res.get("peak_tree_mb")])
    rows.append(["process (end to end)", res.get("wall_s"), None, res.get("cpu_s"),
                 res.get("peak_rss_mb")])
    load = res.get("load")
    note = f"\n(1-minute load average before/after: {load[0]} / {load[1]})" if load else ""
    return benchlib.table(rows, ["phase", "wall s", "% of total", "CPU s", "peak MB"]) + note


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Time and memory of every engine phase on one input.")
    ap.add_argument("--args-file", help="run.args file (one argument per line)")
    ap.add_argument("--name", default=None, help="label of the run (default: args file folder)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--profile", action="store_true", help="also profile one run (cProfile)")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- pna-engine run arguments")
    a = ap.parse_args(argv)
    rest = a.rest[1:] if a.rest and a.rest[0] == "--" else a.rest
    if a.args_file:
        if not Path(a.args_file).exists():
            print(f"bench_phases: {a.args_file} not found: nothing to measure")
            return 0
        args = benchlib.read_args_file(a.args_file) + rest
        name = a.name or Path(a.args_file).resolve().parent.name
    elif rest:
        args, name = rest, a.name or "custom"
    else:
        ap.error("give --args-file FILE or -- <pna-engine run arguments>")
    res = measure(args, name, repeat=a.repeat, workers=a.workers, profile=a.profile)
    print(f"\n{name}: {a.repeat} run(s), median; memory = sum of RSS of the process tree")
    if not res.get("ok"):
        print(f"FAILED: {res.get('error')}")
        return 1
    print(phase_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
