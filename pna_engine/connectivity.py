"""Reachability and connected census blocks (BNA-METHOD.md §8).

For every source block (a block intersecting the boundary) one bounded multi-source Dijkstra
runs on the full network and one on the low-stress network, from the block's seeds (its roads
that intersect the boundary, cost 0), keeping vertices at network distance <= D. Each search is
reduced at once to the minimum cost per target block (over the target's roads), so no
(block x road) table is ever built. A pair (source, target) is kept when the target is
reachable on the full network and the two polygons are within D of each other; it is
low-stress when the blocks share a road or the low-stress cost is at most 1.25 times the
full-network cost.

Pairs are kept as compact numpy arrays (:class:`Connectivity`); :meth:`Connectivity.pairs_frame`
gives the reference's ``neighborhood_connected_census_blocks`` table. Searches run in worker
processes (``s.params.workers``) sharing the graph through fork when the city is large.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

#: Sentinel for a NULL cost in the int32 cost arrays.
NULL_COST = -1
#: bsa's detour rule: low-stress cost / full cost <= 1.25.
DETOUR_RATIO = 1.25
#: Trails (§9.4): path_length > 4800 m and bbox_length > 3300 m.
TRAIL_MIN_LENGTH = 4800.0
TRAIL_MIN_BBOX = 3300.0
#: Below this many source blocks everything runs in the calling process.
PARALLEL_MIN_BLOCKS = 400


@dataclass
class Connectivity:
    """Connected block pairs and per-block reachability.

    Block indices are row positions in ``s.blocks``. Costs are int32 with
    :data:`NULL_COST` for NULL. ``trails_high`` / ``trails_low`` are (block, trail) index pairs:
    trail ``k`` (position in :attr:`trail_ids`) has a segment reachable from the block.
    """

    source: np.ndarray  # int32
    target: np.ndarray  # int32
    low_stress: np.ndarray  # bool
    low_cost: np.ndarray  # int32, NULL_COST = NULL
    high_cost: np.ndarray  # int32
    reachable_blocks: np.ndarray  # int64 per block
    n_blocks: int
    trail_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    trails_high: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64))
    )
    trails_low: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64))
    )

    def __len__(self) -> int:
        return len(self.source)

    def pairs_frame(self, block_ids: Any) -> pd.DataFrame:
        """The reference's ``neighborhood_connected_census_blocks`` table.

        Parameters
        ----------
        block_ids : array-like
            Block id per block index (``s.blocks['geoid20']``).

        Returns
        -------
        DataFrame
            source_blockid20, target_blockid20, low_stress, low_stress_cost (Int64, NA for
            NULL), high_stress (always true), high_stress_cost.
        """
        ids = np.asarray(block_ids)

        return pd.DataFrame(
            {
                "source_blockid20": ids[self.source],
                "target_blockid20": ids[self.target],
                "low_stress": self.low_stress,
                "low_stress_cost": _nullable_int(self.low_cost),
                "high_stress": np.ones(len(self.source), dtype=bool),
                "high_stress_cost": _nullable_int(self.high_cost),
            }
        )


def _nullable_int(a: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(
        np.where(a == NULL_COST, 0, a).astype(np.int64), mask=(a == NULL_COST)
    )


# --------------------------------------------------------------------------- CSR helpers
def _csr_from_lists(lengths: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    return ptr, flat


def _invert(ptr: np.ndarray, idx: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Transpose a CSR membership (rows -> cols) into cols -> rows."""
    rows = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
    order = np.lexsort((rows, idx))
    cnt = np.bincount(idx, minlength=n_cols)
    iptr = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(cnt, out=iptr[1:])
    return iptr, rows[order]


def _gather(ptr: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``idx[ptr[r]:ptr[r+1]]`` for r in rows; also return the row position of each."""
    lo = ptr[rows]
    cnt = ptr[rows + 1] - lo
    total = int(cnt.sum())
    pos = np.repeat(np.arange(len(rows)), cnt)
    offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return idx[np.repeat(lo, cnt) + offs], pos


def block_segments(blocks: Any, ways: Any) -> tuple[np.ndarray, np.ndarray]:
    """Block -> segment row indices (CSR ptr, idx) from the blocks' ``road_ids`` lists."""
    road_id = ways["road_id"].to_numpy(dtype=np.int64)
    order = np.argsort(road_id, kind="stable")
    lists = [x if x is not None and not (isinstance(x, float)) else [] for x in blocks["road_ids"]]
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=int(lengths.sum()))
    sorted_ids = road_id[order]
    pos = np.clip(np.searchsorted(sorted_ids, flat), 0, max(len(order) - 1, 0))
    ok = sorted_ids[pos] == flat if len(order) else np.zeros(len(flat), dtype=bool)
    if not ok.all():  # ids that are not in ways are dropped
        row = np.repeat(np.arange(len(lengths)), lengths)
        lengths = np.bincount(row[ok], minlength=len(lengths)).astype(np.int64)
        pos = pos[ok]
    return _csr_from_lists(lengths, order[pos])


# --------------------------------------------------------------------------- search
_CTX: dict[str, Any] = {}


def _search_block(b: int, graph: Any, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounded multi-seed Dijkstra: (reached vertex indices, integer costs <= D)."""
    from scipy.sparse.csgraph import dijkstra

    d = dijkstra(graph, directed=True, indices=seeds, min_only=True, limit=_CTX["limit"])
    reached = np.flatnonzero(d <= _CTX["D"])
    return reached, d[reached].astype(np.int64)


def _target_minima(reached: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum cost per target block over the target's roads (vertex -> blocks CSR)."""
    tb, pos = _gather(_CTX["rb_ptr"], _CTX["rb_idx"], reached)
    if len(tb) == 0:
        return tb, tb
    c = cost[pos]
    order = np.lexsort((c, tb))
    tb, c = tb[order], c[order]
    first = np.ones(len(tb), dtype=bool)
    first[1:] = tb[1:] != tb[:-1]
    return tb[first], c[first]


def _within_d(b: int, targets: np.ndarray) -> np.ndarray:
    """Straight-line prefilter: polygon distance <= D (bbox bounds first, exact if needed)."""
    import shapely

    D = _CTX["D"]
    bb = _CTX["bounds"]
    sb = bb[b]
    tb = bb[targets]
    dx = np.maximum(0.0, np.maximum(tb[:, 0] - sb[2], sb[0] - tb[:, 2]))
    dy = np.maximum(0.0, np.maximum(tb[:, 1] - sb[3], sb[1] - tb[:, 3]))
    lower = np.hypot(dx, dy)
    ok = lower <= D
    rp = _CTX["rep_xy"]
    upper = np.hypot(rp[targets, 0] - rp[b, 0], rp[targets, 1] - rp[b, 1])
    unsure = ok & (upper > D)
    if unsure.any():
        geoms = _CTX["geoms"]
        ok[unsure] = shapely.distance(geoms[b], geoms[targets[unsure]]) <= D
    return ok


def _process_block(b: int) -> tuple[Any, ...] | None:
    ptr, idx = _CTX["bs_ptr"], _CTX["bs_idx"]
    roads = idx[ptr[b] : ptr[b + 1]]
    seeds = np.unique(roads[_CTX["is_source_road"][roads]])
    if len(seeds) == 0:
        return None
    r_full, c_full = _search_block(b, _CTX["full"], seeds)
    r_low, c_low = _search_block(b, _CTX["low"], seeds)
    t_full, m_full = _target_minima(r_full, c_full)
    t_low, m_low = _target_minima(r_low, c_low)
    keep = _within_d(b, t_full)
    t_full, m_full = t_full[keep], m_full[keep]
    # low-stress targets are a subset of full targets (the low network is a subgraph)
    low_cost = np.full(len(t_full), NULL_COST, dtype=np.int64)
    pos = np.searchsorted(t_full, t_low)
    pos_ok = pos < len(t_full)
    pos_ok[pos_ok] = t_full[pos[pos_ok]] == t_low[pos_ok]
    low_cost[pos[pos_ok]] = m_low[pos_ok]
    shared_blocks, _ = _gather(_CTX["rb_ptr"], _CTX["rb_idx"], roads)
    shared = np.isin(t_full, shared_blocks)
    has_low = low_cost != NULL_COST
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_ok = (m_full == 0) | (low_cost / np.where(m_full == 0, 1, m_full) <= DETOUR_RATIO)
    low_stress = shared | (has_low & ratio_ok)
    trails = None
    seg_trail = _CTX["seg_trail"]
    if seg_trail is not None:
        th = np.unique(seg_trail[r_full])
        tl = np.unique(seg_trail[r_low])
        trails = (th[th >= 0], tl[tl >= 0])
    return t_full, m_full, low_cost, low_stress, trails


def _run_chunk(blocks: np.ndarray) -> list[tuple[int, Any]]:
    out = []
    for b in blocks:
        r = _process_block(int(b))
        if r is not None:
            out.append((int(b), r))
    return out


def _trail_segments(s: Any, n_seg: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Trail index per segment (-1 = not a trail segment) from ``s.paths`` (§9.4)."""
    paths = s.paths
    if paths is None or len(paths) == 0:
        return None, np.zeros(0, np.int64)
    pl = pd.to_numeric(paths["path_length"], errors="coerce").to_numpy(float, na_value=np.nan)
    bl = pd.to_numeric(paths["bbox_length"], errors="coerce").to_numpy(float, na_value=np.nan)
    is_trail = (pl > TRAIL_MIN_LENGTH) & (bl > TRAIL_MIN_BBOX)
    trails = paths[is_trail]
    if len(trails) == 0:
        return None, np.zeros(0, np.int64)
    seg_trail = np.full(n_seg, -1, dtype=np.int64)
    ptr, idx = block_segments(trails, s.ways)  # same list -> segment mapping
    for k in range(len(trails)):
        seg_trail[idx[ptr[k] : ptr[k + 1]]] = k
    return seg_trail, trails["path_id"].to_numpy()


def connect(
    blocks: Any,
    ways: Any,
    boundary_geom: Any,
    network: Any,
    max_trip_distance: float,
    *,
    workers: int | None = 1,
    seg_trail: np.ndarray | None = None,
    trail_ids: np.ndarray | None = None,
) -> Connectivity:
    """Connected block pairs (§8) for blocks with ``road_ids`` on a built network.

    Parameters
    ----------
    blocks : GeoDataFrame
        Blocks with ``road_ids`` (road ids of ``ways``), projected CRS.
    ways : GeoDataFrame
        Segments (row ``i`` = network vertex ``i``).
    boundary_geom : shapely geometry
        The (unbuffered) boundary: source blocks and source roads intersect it.
    network : pna_engine.network.Network
    max_trip_distance : float
        D in metres (inclusive bound and straight-line prefilter).
    workers : int or None
        Worker processes (None = all cores); small cities run in-process.
    seg_trail, trail_ids : arrays, optional
        Trail index per segment (-1 none) and the trails' path ids.

    Returns
    -------
    Connectivity
    """
    import shapely

    D = float(max_trip_distance)
    nb = len(blocks)
    geoms = np.asarray(blocks.geometry.values)
    way_geoms = np.asarray(ways.geometry.values)
    bs_ptr, bs_idx = block_segments(blocks, ways)
    rb_ptr, rb_idx = _invert(bs_ptr, bs_idx, len(way_geoms))
    shapely.prepare(boundary_geom)
    is_source_road = shapely.intersects(boundary_geom, way_geoms)
    source_blocks = np.flatnonzero(shapely.intersects(boundary_geom, geoms))
    rep = shapely.point_on_surface(geoms)
    _CTX.clear()
    _CTX.update(
        D=D,
        # integer costs: <= D  <=>  < floor(D) + 0.5 (scipy's limit is exclusive)
        limit=float(np.floor(D)) + 0.5,
        full=network.full,
        low=network.low,
        bs_ptr=bs_ptr,
        bs_idx=bs_idx,
        rb_ptr=rb_ptr,
        rb_idx=rb_idx,
        is_source_road=is_source_road,
        bounds=shapely.bounds(geoms),
        rep_xy=np.stack([shapely.get_x(rep), shapely.get_y(rep)], axis=1),
        geoms=geoms,
        seg_trail=seg_trail,
    )
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    results: list[tuple[int, Any]] = []
    if n_workers > 1 and len(source_blocks) >= PARALLEL_MIN_BLOCKS:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = np.array_split(source_blocks, n_workers * 8)
        ctx = mp.get_context("fork")
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as ex:
            for part in ex.map(_run_chunk, chunks):
                results.extend(part)
    else:
        results = _run_chunk(source_blocks)
    _CTX.clear()
    return _assemble(results, nb, trail_ids)


def _assemble(
    results: list[tuple[int, Any]], nb: int, trail_ids: np.ndarray | None
) -> Connectivity:
    if results:
        src = np.concatenate([np.full(len(r[0]), b, np.int32) for b, r in results])
        tgt = np.concatenate([r[0] for _, r in results]).astype(np.int32)
        high = np.concatenate([r[1] for _, r in results]).astype(np.int32)
        low = np.concatenate([r[2] for _, r in results]).astype(np.int32)
        ls = np.concatenate([r[3] for _, r in results]).astype(bool)
    else:
        src = tgt = high = low = np.zeros(0, np.int32)
        ls = np.zeros(0, bool)
    reach = np.bincount(src, minlength=nb).astype(np.int64)

    def trail_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
        bl = [np.full(len(r[4][k]), b, np.int64) for b, r in results if r[4] is not None]
        tr = [r[4][k] for _, r in results if r[4] is not None]
        if not bl:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(bl), np.concatenate(tr).astype(np.int64)

    return Connectivity(
        source=src,
        target=tgt,
        low_stress=ls,
        low_cost=low,
        high_cost=high,
        reachable_blocks=reach,
        n_blocks=nb,
        trail_ids=trail_ids if trail_ids is not None else np.zeros(0, np.int64),
        trails_high=trail_pairs(0),
        trails_low=trail_pairs(1),
    )


def compute_connectivity(s: Any) -> Connectivity:
    """Pipeline phase ``connectivity`` (§8): connected block pairs and trail reachability.

    Parameters
    ----------
    s : RunState
        Uses ``s.blocks`` (with ``road_ids``), ``s.ways``, ``s.network``, ``s.boundary``,
        ``s.paths`` and ``s.params`` (max_trip_distance, workers).

    Returns
    -------
    Connectivity
    """
    seg_trail, trail_ids = _trail_segments(s, len(s.ways))
    boundary_geom = s.boundary.geometry.union_all()
    conn = connect(
        s.blocks,
        s.ways,
        boundary_geom,
        s.network,
        s.params.max_trip_distance,
        workers=s.params.workers,
        seg_trail=seg_trail,
        trail_ids=trail_ids,
    )
    s.counts["connected_pairs"] = len(conn)
    s.counts["low_stress_pairs"] = int(conn.low_stress.sum())
    return conn
