"""Scaling on synthetic US cities: time and memory per phase from a town to one million people.

For each size the synthetic city (``synthetic_city.py``, seeded, cached in
``outputs/bench/synthetic/``) is generated once, then the engine runs on it in a fresh process
(``benchlib.run_engine``). The table shows every phase, the end-to-end time, the peak memory of
the process tree, the size of the network and of the connected-pairs table, and the growth
exponent ``k`` of the engine time between consecutive sizes (time ∝ population^k).

When ``benchmarks/bench_connectivity.py`` (the bare shortest-path sweep, "limit") is present,
it is run on the same city and its time is shown next to the connectivity phase.

Usage::

    python benchmarks/bench_scaling.py                       # 10k, 50k, 200k, 500k, 1M people
    python benchmarks/bench_scaling.py --sizes 10000,100000 --seed 2 --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

from pna_engine import PHASES  # noqa: E402

DEFAULT_SIZES = (10_000, 50_000, 200_000, 500_000, 1_000_000)


def city_dir(population: int, seed: int) -> Path:
    return benchlib.outputs_dir() / "synthetic" / f"pop{population}-seed{seed}"


def ensure_city(population: int, seed: int) -> dict[str, Any]:
    """Generate the city (in a subprocess) unless it is already there; return its city.json."""
    d = city_dir(population, seed)
    meta = d / "city.json"
    if not meta.exists():
        subprocess.run([benchlib.python(), str(benchlib.BENCH_DIR / "synthetic_city.py"), str(d),
                        "--population", str(population), "--seed", str(seed), "--force"],
                       check=True, capture_output=True, text=True)
    return json.loads(meta.read_text())


_LIMIT_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
import bench_connectivity as bc
from pna_engine import connectivity
s = bc.from_args_file({args_file!r})
geom = s.boundary.geometry.union_all()
D = s.params.max_trip_distance
out = {{"blocks": len(s.blocks), "vertices": int(s.network.n_vert), "links": int(s.network.n_link)}}
r = bc.bare_sweep(s.network, s.blocks, s.ways, geom, D)
wall, cpu = r if isinstance(r, tuple) else (r, None)
out["sweep_s"], out["sweep_cpu_s"] = round(wall, 3), cpu and round(cpu, 3)
def cpu():  # this process + reaped children (the workers)
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
for w in {workers!r}:
    t0, c0 = time.perf_counter(), cpu()
    c = connectivity.connect(s.blocks, s.ways, geom, s.network, D, workers=w)
    out[f"connect_w{{w}}_s"] = round(time.perf_counter() - t0, 3)
    out[f"connect_w{{w}}_cpu_s"] = round(cpu() - c0, 3)
    out["pairs"] = len(c)
print(json.dumps(out))
"""


def bare_sweep(city: dict[str, Any], workers: list[int]) -> dict[str, Any] | None:
    """The "limit": H3's bare scipy sweep (one bounded search per source block on the full and
    the low-stress network, one process, nothing else) on the city's own graph, and our
    connectivity function on the same graph with each number of ``workers``.

    Runs in a fresh process (``bench_connectivity.from_args_file`` builds the graph with the
    engine's phases up to ``blocks``). None when ``bench_connectivity.py`` is absent.
    """
    if not (benchlib.BENCH_DIR / "bench_connectivity.py").exists():
        return None
    code = _LIMIT_CHILD.format(bench=str(benchlib.BENCH_DIR), args_file=city["run_args"],
                               workers=list(workers))
    t0 = time.perf_counter()
    proc = subprocess.run([benchlib.python(), "-c", code], capture_output=True, text=True,
                          cwd=benchlib.REPO)
    out: dict[str, Any] = {"wall_s": round(time.perf_counter() - t0, 2)}
    if proc.returncode != 0:
        out["error"] = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return out
    out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def run_sizes(sizes: list[int], seed: int = 1, workers: int | None = None,
              limit: bool = True, profile_largest: bool = False) -> list[dict[str, Any]]:
    """Generate and run each size; return one record per size."""
    results = []
    for i, n in enumerate(sizes):
        t0 = time.perf_counter()
        city = ensure_city(n, seed)
        print(f"[bench_scaling] {n:,} people: city ready ({time.perf_counter() - t0:.1f} s; "
              f"generation took {city['seconds']} s); running the engine ...", flush=True)
        args = benchlib.read_args_file(Path(city["run_args"]))
        out = benchlib.outputs_dir() / "runs" / f"synthetic-{n}"
        prof = None
        if profile_largest and i == len(sizes) - 1:
            prof = benchlib.outputs_dir() / f"synthetic-{n}.prof"
        res = benchlib.run_engine(args, out, workers=workers, profile=prof)
        res.update({"name": f"synthetic {n:,}", "population": n, "city": city})
        if prof is not None and res.get("ok"):
            res["hot_spots"] = benchlib.print_profile(prof)
        if limit and res.get("ok"):
            print(f"[bench_scaling] {n:,}: bare sweep (limit) ...", flush=True)
            cores = workers or os.cpu_count() or 1
            res["limit"] = bare_sweep(city, sorted({1, cores}))
        results.append(res)
        if not res.get("ok"):
            print(f"[bench_scaling] {n:,}: FAILED: {res.get('error')}", flush=True)
        else:
            print(f"[bench_scaling] {n:,}: {res['wall_s']:.1f} s end to end, "
                  f"{res.get('peak_tree_mb', 0) / 1024:.2f} GB peak", flush=True)
    return results


def _lim(r: dict[str, Any], key: str) -> float | None:
    v = (r.get("limit") or {}).get(key)
    return float(v) if isinstance(v, int | float) else None


def _limit_s(r: dict[str, Any]) -> float | None:
    """Wall time of the bare sweep."""
    return _lim(r, "sweep_s")


def _connect_1_s(r: dict[str, Any]) -> float | None:
    """Wall time of our connectivity in one process on the same graph."""
    return _lim(r, "connect_w1_s")


def limit_ratio(r: dict[str, Any]) -> float | None:
    """Our connectivity in one process / the bare sweep, on CPU time when measured (robust on
    a shared machine), else on wall time."""
    a, b = _lim(r, "connect_w1_cpu_s"), _lim(r, "sweep_cpu_s")
    if a and b:
        return a / b
    a, b = _connect_1_s(r), _limit_s(r)
    return a / b if a and b else None


def print_report(results: list[dict[str, Any]]) -> None:
    done = [r for r in results if r.get("ok")]
    if not done:
        return
    print("\nSynthetic cities: inputs")
    rows = []
    for r in done:
        c, k = r["city"], r.get("counts", {})
        rows.append([r["population"], round(c["side_m"] ** 2 / 1e6), c["counts"]["blocks"],
                     k.get("blocks"), c["counts"]["road_segments"], k.get("network_vertices"),
                     k.get("network_links"), k.get("connected_pairs"), c["seconds"]])
    print(benchlib.table(rows, ["population", "km²", "blocks in file", "blocks kept",
                                "OSM road segments", "net vertices", "net links",
                                "connected pairs", "generate s"]))
    print("\nTime per phase (s) and peak memory (sum of RSS of the process tree)")
    phases = [p for p in PHASES if any(p in r["timings"] for r in done)]
    rows, prev = [], None
    for r in done:
        t = r["timings"]
        k = None
        if prev is not None:
            k = math.log(t["total"] / prev["timings"]["total"]) / math.log(
                r["population"] / prev["population"])
        rows.append([r["population"], *[t.get(p) for p in phases], t.get("total"), r["wall_s"],
                     round(r.get("peak_tree_mb", 0) / 1024, 2), k])
        prev = r
    print(benchlib.table(rows, ["population", *phases, "engine", "end-to-end", "peak GB",
                                "growth k"]))
    lim_rows = []
    for r in done:
        lim, c1 = _limit_s(r), _connect_1_s(r)
        if lim is None:
            if r.get("limit", {}) and r["limit"].get("error"):
                print(f"limit {r['population']:,}: failed: {r['limit']['error']}")
            continue
        wk = sorted(int(k[9:-2]) for k in r["limit"] if k.startswith("connect_w")
                    and k.endswith("_s") and not k.endswith("cpu_s") and k != "connect_w1_s")
        ck = _lim(r, f"connect_w{wk[-1]}_s") if wk else None
        lim_rows.append([r["population"], lim, _lim(r, "sweep_cpu_s"), c1,
                         _lim(r, "connect_w1_cpu_s"), limit_ratio(r),
                         f"{ck:.2f} ({wk[-1]})" if ck else None,
                         _lim(r, f"connect_w{wk[-1]}_cpu_s") if wk else None,
                         r["timings"].get("connectivity")])
    if lim_rows:
        print("\nLimit: bare scipy sweep (1 process, one bounded search per source block on each "
              "network, nothing else) vs our connectivity on the same graph")
        print(benchlib.table(lim_rows, ["population", "sweep wall s", "sweep CPU s",
                                        "ours 1 proc wall s", "ours 1 proc CPU s",
                                        "ratio (CPU)", "ours N workers wall s (N)", "CPU s",
                                        "ours in the engine run wall s"]))
    big = done[-1]
    if big["population"] >= 1_000_000:
        ok1 = big["wall_s"] < 300
        ok2 = big.get("peak_tree_mb", 0) < 8 * 1024
        lim = _limit_s(big)
        ratio = limit_ratio(big)
        print(f"\n{big['population']:,} people against the 1M-people targets: end to end "
              f"{big['wall_s']:.0f} s (< 300 s: "
              f"{'met' if ok1 else 'NOT met'}); peak {big.get('peak_tree_mb', 0) / 1024:.2f} GB "
              f"(< 8 GB: {'met' if ok2 else 'NOT met'}); connectivity (1 process) / bare sweep "
              + (f"{ratio:.2f} (<= 2: {'met' if ratio <= 2 else 'NOT met'})" if ratio
                 else "not measured"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Scaling on synthetic cities.")
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                    help="comma-separated populations (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-limit", action="store_true", help="skip the bare-sweep measurement")
    ap.add_argument("--profile-largest", action="store_true",
                    help="run the largest size under cProfile and print hot spots")
    ap.add_argument("--json", default=None, help="write the results to this file")
    a = ap.parse_args(argv)
    sizes = [int(float(s)) for s in a.sizes.split(",") if s]
    results = run_sizes(sizes, seed=a.seed, workers=a.workers, limit=not a.no_limit,
                        profile_largest=a.profile_largest)
    print_report(results)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
