"""The "limit" benchmark of the connectivity phase.

Compares, on the same graph:

* **bare sweep**: the plain way to run the searches: one bounded multi-seed
  ``scipy.sparse.csgraph.dijkstra`` per source block on the whole full network and one on
  the whole low-stress network, nothing else (no reduction to blocks, no pairs);
* **our phase**: :func:`pna_engine.connectivity.connect` (searches + reduction to target-block
  minima + straight-line prefilter + detour rule + trails), in one process and with workers.

Our phase searches each block on its tile's subgraph (D + 250 m around the tile's seeds, for
graphs of 10,000 vertices or more) with both networks in one scipy call, so on big graphs it
can cost less than the bare sweep, whose every search sets up all the graph's vertices
(scipy's per-search set-up is O(vertices)): the ratio is an overhead measure, not a bound.

Usage::

    python benchmarks/bench_connectivity.py                 # synthetic grid city, ~10k segments
    python benchmarks/bench_connectivity.py --grid 120      # bigger grid (n x n intersections)
    python benchmarks/bench_connectivity.py --args-file ../shared/data/liechtenstein/run.args
    python benchmarks/bench_connectivity.py --args-file \
        outputs/bench/synthetic/pop1000000-seed1/run.args --repeat 3   # median of 3

The synthetic city is an ``n x n`` street grid (100 m blocks, random stress with a fixed seed);
``--args-file`` runs the engine's own phases up to ``blocks`` on a real input and benchmarks
the connectivity phase on the resulting graph (needs the features/stress phases).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pna_engine import blocks as blocks_mod  # noqa: E402
from pna_engine import connectivity, network  # noqa: E402


def grid_city(n: int = 70, spacing: float = 100.0, seed: int = 0) -> SimpleNamespace:
    """An ``n x n`` grid of two-way streets with 100 m square blocks and random stress."""
    import geopandas as gpd
    import pandas as pd
    from shapely import box, linestrings

    rng = np.random.default_rng(seed)
    ids = np.arange(n * n).reshape(n, n)
    coords, frm, to = [], [], []
    for i in range(n):
        for j in range(n - 1):
            coords.append([(j * spacing, i * spacing), ((j + 1) * spacing, i * spacing)])
            frm.append(ids[i, j])
            to.append(ids[i, j + 1])
            coords.append([(i * spacing, j * spacing), (i * spacing, (j + 1) * spacing)])
            frm.append(ids[j, i])
            to.append(ids[j + 1, i])
    m = len(coords)
    seg_stress = np.where(rng.random(m) < 0.3, 3, 1)
    int_stress = np.where(rng.random(m) < 0.2, 3, 1)
    ways = gpd.GeoDataFrame(
        {
            "road_id": np.arange(1, m + 1),
            "intersection_from": frm,
            "intersection_to": to,
            "one_way": [None] * m,
            "ft_seg_stress": seg_stress,
            "tf_seg_stress": seg_stress,
            "ft_int_stress": int_stress,
            "tf_int_stress": int_stress,
        },
        geometry=linestrings(np.array(coords)),
        crs=32635,
    )
    cells = [
        box(j * spacing, i * spacing, (j + 1) * spacing, (i + 1) * spacing)
        for i in range(n - 1)
        for j in range(n - 1)
    ]
    blocks = gpd.GeoDataFrame(
        {"geoid20": [f"{k:015d}" for k in range(len(cells))], "pop20": 100},
        geometry=cells,
        crs=32635,
    )
    ints = pd.DataFrame({"int_id": np.arange(n * n)})
    extent = box(0, 0, (n - 1) * spacing, (n - 1) * spacing)
    boundary = gpd.GeoDataFrame(geometry=[extent], crs=32635)
    return SimpleNamespace(ways=ways, intersections=ints, blocks=blocks, boundary=boundary)


def from_args_file(path: str) -> SimpleNamespace:
    """Run the engine's phases up to ``blocks`` on a real input."""
    from pna_engine import pipeline
    from pna_engine.cli import build_parser, params_from_args
    from pna_helpers.paths import outputs_dir

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import benchlib

    args = benchlib.read_args_file(path)
    ns = build_parser().parse_args(["run", *args, "--output", str(outputs_dir() / "bench-conn")])
    params = params_from_args(ns)
    s = pipeline.run(params, stop_after="blocks")
    return s


def bare_sweep(
    net: Any, blocks: Any, ways: Any, boundary_geom: Any, D: float
) -> tuple[float, float]:
    """(wall, CPU) seconds for one bounded scipy search per source block on each network."""
    import shapely
    from scipy.sparse.csgraph import dijkstra

    ptr, idx = connectivity.block_segments(blocks, ways)
    is_src = shapely.intersects(boundary_geom, np.asarray(ways.geometry.values))
    block_geoms = np.asarray(blocks.geometry.values)
    src_blocks = np.flatnonzero(shapely.intersects(boundary_geom, block_geoms))
    seeds = []
    for b in src_blocks:
        r = idx[ptr[b] : ptr[b + 1]]
        r = np.unique(r[is_src[r]])
        if len(r):
            seeds.append(r)
    limit = float(np.floor(D)) + 0.5
    t0, c0 = time.perf_counter(), time.process_time()
    for sd in seeds:
        dijkstra(net.full, directed=True, indices=sd, min_only=True, limit=limit)
        dijkstra(net.low, directed=True, indices=sd, min_only=True, limit=limit)
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=70, help="synthetic grid size n (n x n)")
    ap.add_argument("--args-file", default=None, help="real input (run.args) instead of a grid")
    ap.add_argument("--distance", type=float, default=2680.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each measure (median)")
    a = ap.parse_args(argv)

    if a.args_file:
        s = from_args_file(a.args_file)
        net, blocks, ways = s.network, s.blocks, s.ways
        boundary_geom = s.boundary.geometry.union_all()
        label = a.args_file
    else:
        city = grid_city(a.grid)
        t0 = time.perf_counter()
        net = network.build_from_tables(city.ways, city.intersections)
        t_net = time.perf_counter() - t0
        t0 = time.perf_counter()
        state = SimpleNamespace(blocks=city.blocks, ways=city.ways, counts={})
        blocks = blocks_mod.assign_roads(state)
        t_blk = time.perf_counter() - t0
        ways = city.ways
        boundary_geom = city.boundary.geometry.union_all()
        label = f"grid {a.grid}x{a.grid}"
        print(f"network build {t_net:.3f} s, block-road assignment {t_blk:.3f} s")
    print(
        f"{label}: {net.n_vert} vertices, {net.n_link} links, {len(blocks)} blocks, "
        f"D = {a.distance:g} m"
    )
    runs: dict[str, list[tuple[float, float]]] = {"bare": [], "one": [], "workers": []}
    conn1 = connk = None
    for _ in range(max(1, a.repeat)):
        runs["bare"].append(bare_sweep(net, blocks, ways, boundary_geom, a.distance))
        t0, c0 = time.perf_counter(), time.process_time()
        conn1 = connectivity.connect(blocks, ways, boundary_geom, net, a.distance, workers=1)
        runs["one"].append((time.perf_counter() - t0, time.process_time() - c0))
        t0, c0 = time.perf_counter(), time.process_time()
        connk = connectivity.connect(blocks, ways, boundary_geom, net, a.distance,
                                     workers=a.workers)  # fmt: skip
        runs["workers"].append((time.perf_counter() - t0, time.process_time() - c0))
    assert len(conn1) == len(connk)
    (bare, bare_cpu), (ours1, ours1_cpu), (oursk, _) = (
        tuple(float(np.median(col)) for col in zip(*runs[k])) for k in ("bare", "one", "workers")
    )
    label = f"median of {a.repeat}" if a.repeat > 1 else "1 run"
    print(f"                                   wall s    CPU s   ratio (CPU, 1 process; {label})")
    print(f"bare scipy sweep (1 process)     {bare:8.3f} {bare_cpu:8.3f}")
    print(
        f"our connectivity (1 process)     {ours1:8.3f} {ours1_cpu:8.3f}   "
        f"{ours1_cpu / bare_cpu:5.2f}x"
    )
    print(f"our connectivity ({a.workers} workers)     {oursk:8.3f}")
    if a.repeat > 1:
        for k, name in (("bare", "bare"), ("one", "ours 1 proc"), ("workers", "ours workers")):
            print(f"  {name:13s} wall s per run: " + ", ".join(f"{w:.3f}" for w, _ in runs[k]))
    print(f"connected pairs {len(conn1):,}, low-stress {int(conn1.low_stress.sum()):,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
