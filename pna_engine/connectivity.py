"""Reachability and connected census blocks (BNA-METHOD.md §8).

For every source block (a block intersecting the boundary) one bounded multi-source Dijkstra
runs on the full network and one on the low-stress network, from the block's seeds (its roads
that intersect the boundary, cost 0), keeping vertices at network distance <= D. Each search is
reduced at once to the minimum cost per target block (over the target's roads), so no
(block x road) table is ever built. A pair (source, target) is kept when the target is
reachable on the full network and the two polygons are within D of each other; it is
low-stress when the blocks share a road or the low-stress cost is at most 1.25 times the
full-network cost. Like the reference, a block's searches use only the links within D + 100 m
of the block (this matters only for blocks with a seed road far from them, see
:func:`_restricted_searches`).

Cost: in a big city a search reaches a small part of the graph, but scipy sets up every vertex
of the graph it is given. So source blocks are grouped in square tiles and a tile's searches
run on the subgraph around it (:func:`_tile_area`); a search that reaches the subgraph's edge
is redone on the whole graph, so results never depend on the tiles. Both networks are searched
in one scipy call (the two graphs side by side), and the reduction to target minima covers
trails too.

Pairs are kept as compact numpy arrays (:class:`Connectivity`), ordered by source block then
target; :meth:`Connectivity.pairs_frame` gives the reference's
``neighborhood_connected_census_blocks`` table. Searches run in worker processes
(``s.params.workers``) sharing the graph through fork when the city is large.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pna_engine.state import RunState

#: Sentinel for a NULL cost in the int32 cost arrays.
NULL_COST = -1
#: bsa's detour rule: low-stress cost / full cost <= 1.25.
DETOUR_RATIO = 1.25
#: Trails (§9.4): path_length > 4800 m and bbox_length > 3300 m.
TRAIL_MIN_LENGTH = 4800.0
TRAIL_MIN_BBOX = 3300.0
#: Worker processes are used only for at least this many source blocks and this much work
#: (source blocks x vertices): below it, forking costs more than it saves (measured on 2
#: idle cores: break-even near 1.2e6; Liechtenstein, 1.0e7, 0.41 s -> 0.26 s with 2 workers).
PARALLEL_MIN_BLOCKS = 400
PARALLEL_MIN_WORK = 3e6


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


def _sharing_blocks(
    bs_ptr: np.ndarray, bs_idx: np.ndarray, nb: int, n_seg: int
) -> tuple[np.ndarray, np.ndarray]:
    """Block -> blocks sharing at least one road (CSR), from the block-road incidence."""
    import scipy.sparse as sp

    m = sp.csr_matrix(
        (np.ones(len(bs_idx), dtype=np.float32), bs_idx, bs_ptr), shape=(nb, n_seg)
    )
    sh = (m @ m.T).tocsr()
    sh.sort_indices()
    return sh.indptr.astype(np.int64), sh.indices.astype(np.int64)


# --------------------------------------------------------------------------- search
# Per-process context: the graphs and tables, set before the worker processes fork.
_CTX: dict[str, Any] = {}
_INF = np.inf
#: The reference's searches use only the links within D + 100 m of the source block.
LINK_ZONE_MARGIN = 100.0
#: Planning only: a search from seeds at most ``f`` metres from the block reaches about
#: f + D from it, so blocks with a seed vertex farther than this are likely to reach beyond
#: the link zone and search the whole graph at once (any block whose tile search reaches
#: beyond the zone is redone there too: the zone rule itself is exact for every block).
LINK_ZONE_TRIGGER = 75.0
#: Seeded blocks processed before their pairs are post-processed together.
CHUNK_BLOCKS = 512

#: Local searches. Source blocks are grouped in square tiles of this side (metres); the
#: searches of a tile's blocks run on the subgraph of the vertices within D + TILE_MARGIN of
#: its seeds' bounding box, so that their cost (scipy sets up every vertex of the graph it is
#: given) and their reduction follow the reach, not the city. A search that reaches a vertex
#: with a link leaving the subgraph is redone on the whole graph, so results are exact
#: whatever the margin (a link costs at least the distance between its vertices less one
#: metre, so the margin is rarely crossed).
TILE_SIZE = 2000.0
TILE_MARGIN = 250.0
#: A tile whose subgraph would hold more than this share of the vertices searches the whole
#: graph, and so do all blocks of graphs smaller than TILE_MIN_VERTICES (small cities: there
#: the whole graph costs no more than building subgraphs).
TILE_MAX_SHARE = 0.5
TILE_MIN_VERTICES = 10_000


@dataclass
class _Area:
    """The graph a group of searches runs on: the whole network or a tile's subgraph.

    ``verts`` are the global vertex ids of the local vertices (sorted; None = the whole
    graph); ``both`` the full and the low-stress graphs side by side (vertex ``i`` of the
    low-stress graph is ``n + i``: one scipy call searches both); ``exits`` the local
    vertices with a link leaving the subgraph (a low-stress link is also a full-network
    link, so these cover both networks); ``seg`` / ``eb`` the entry table (see
    :func:`connect`) restricted to the local vertices (entry -> local vertex, entry -> block
    or trail, non-decreasing).
    """

    verts: np.ndarray | None
    both: Any
    exits: np.ndarray
    seg: np.ndarray
    eb: np.ndarray
    #: coordinates of the local vertices (tiles only; the link-zone test)
    xy: tuple[np.ndarray, np.ndarray] | None = None


def _global_area() -> _Area:
    both = _side_by_side(_CTX["full"], _CTX["low"])
    return _Area(None, both, np.zeros(0, np.int64), _CTX["ent_vert"], _CTX["ent_block"])


def _side_by_side(full: Any, low: Any) -> Any:
    """The disjoint union of two graphs on the same n vertices (CSR, 2n vertices)."""
    import scipy.sparse as sp

    n = full.shape[0]
    indptr = np.concatenate([full.indptr[:-1], low.indptr + full.nnz])
    indices = np.concatenate([full.indices, low.indices + n])
    data = np.concatenate([full.data, low.data])
    return sp.csr_matrix((data, indices, indptr), shape=(2 * n, 2 * n))


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(start[i], start[i] + count[i])``."""
    total = int(count.sum())
    base = np.repeat(start - (np.cumsum(count) - count), count)
    return base + np.arange(total, dtype=base.dtype)


def _subgraph(graph: Any, verts: np.ndarray, g2l: np.ndarray) -> tuple[Any, np.ndarray]:
    """The links of ``graph`` between ``verts`` (CSR in local ids) and the local vertices with
    a link leaving them."""
    import scipy.sparse as sp

    ip = graph.indptr
    lo = ip[verts].astype(np.int64)
    cnt = ip[verts + 1] - lo
    arc = _ranges(lo, cnt)
    row = np.repeat(np.arange(len(verts)), cnt)
    tl = g2l[graph.indices[arc]]
    keep = tl >= 0
    exits = np.unique(row[~keep])
    indptr = np.zeros(len(verts) + 1, dtype=np.int32)
    np.cumsum(np.bincount(row[keep], minlength=len(verts)), out=indptr[1:])
    k = len(verts)
    m = sp.csr_matrix((graph.data[arc[keep]], tl[keep], indptr), shape=(k, k))
    return m, exits


def _tile_area(rect: np.ndarray) -> _Area | None:
    """The subgraph of the vertices inside ``rect`` (x0, y0, x1, y1); None when it would hold
    more than :data:`TILE_MAX_SHARE` of the graph. Leaves ``_CTX["g2l"]`` mapping the global
    ids of its vertices to local ones (reset by the caller)."""
    xs, order, vy = _CTX["vx_sorted"], _CTX["vx_order"], _CTX["vert_y"]
    x0, y0, x1, y1 = rect
    cand = order[np.searchsorted(xs, x0, "left") : np.searchsorted(xs, x1, "right")]
    verts = np.sort(cand[(vy[cand] >= y0) & (vy[cand] <= y1)])
    if len(verts) > TILE_MAX_SHARE * len(xs):
        return None
    g2l = _CTX["g2l"]
    g2l[verts] = np.arange(len(verts), dtype=np.int32)
    full, exits = _subgraph(_CTX["full"], verts, g2l)
    low, _ = _subgraph(_CTX["low"], verts, g2l)
    vp = _CTX["ve_ptr"]
    ent = _CTX["ve_idx"][_ranges(vp[verts], vp[verts + 1] - vp[verts])]
    ent.sort()
    both = _side_by_side(full, low)
    return _Area(verts, both, exits, g2l[_CTX["ent_vert"][ent]], _CTX["ent_block"][ent],
                 (_CTX["vert_x"][verts], _CTX["vert_y"][verts]))


def _reduce(area: _Area, d: np.ndarray, dl: np.ndarray) -> tuple[np.ndarray, ...]:
    """(targets (sorted), full-network minimum, low-stress minimum (inf = none)) over the
    blocks (and trails: targets >= n_blocks) with a road at <= D on the full network.

    In the area's entry table the entries of a target are contiguous (targets in order), so
    the minima are one ``minimum.reduceat`` over the entries whose road was reached;
    low-stress targets are a subset of the full-network ones (subgraph, same seeds), so the
    same groups give the low-stress minima. No (block x road) table is ever built.
    """
    D, seg = _CTX["D"], area.seg
    g = np.take(d, seg)  # (np.take: faster than fancy indexing on these sizes)
    f = np.flatnonzero(g <= D)
    if len(f) == 0:
        return f, np.zeros(0), np.zeros(0)
    eb = np.take(area.eb, f)
    first = np.flatnonzero(eb[1:] != eb[:-1]) + 1
    first = np.concatenate(([0], first))
    high = np.minimum.reduceat(np.take(g, f), first)
    low = np.minimum.reduceat(np.take(dl, np.take(seg, f)), first)
    return np.take(eb, first), high, low


def _search_block(area: _Area, b: int, seeds: np.ndarray) -> tuple[np.ndarray, ...]:
    """Both bounded searches of one block (one scipy call on the two graphs side by side),
    reduced at once to target minima.

    ``seeds`` are global vertex ids. On a tile's subgraph, a search that reached a vertex
    with a link leaving it is redone on the whole graph (exact: any path within D that
    leaves the subgraph passes through such a vertex first, within D; the low-stress search
    reaches no farther than the full one).

    Returns (targets (sorted; trails are n_blocks + trail index), full-network cost,
    low-stress cost (inf = none)).
    """
    from scipy.sparse.csgraph import dijkstra

    limit, D = _CTX["limit"], _CTX["D"]
    local = seeds if area.verts is None else _CTX["g2l"][seeds]
    n = area.both.shape[0] // 2
    dd = dijkstra(area.both, directed=True, indices=np.concatenate([local, local + n]),
                  min_only=True, limit=limit)  # fmt: skip
    d, dl = dd[:n], dd[n:]
    if area.verts is not None:
        if len(area.exits) and d[area.exits].min() <= D:
            return _search_block(_CTX["global_area"], b, seeds)
        # the link zone (exact): a tile search that reached a vertex beyond it is redone on
        # the whole graph, where the restricted searches apply
        reached = d <= D
        if _beyond_zone(b, area.xy[0][reached], area.xy[1][reached]).any():
            return _search_block(_CTX["global_area"], b, seeds)
    elif _CTX["seed_far"] is not None:
        d, dl = _restricted_searches(b, seeds, d, dl)
    return _reduce(area, d, dl)


def _beyond_zone(b: int, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Which of the vertices at ``vx, vy`` lie farther than D + 100 m from block ``b``.

    The distance to the block's bounding box is a lower bound, within the box's diagonal of
    the exact distance: the exact (GEOS) distance is computed only for the vertices in
    between, so a search that stays well inside the zone costs one vectorised test.
    """
    import shapely

    zone = _CTX["D"] + LINK_ZONE_MARGIN
    x0, y0, x1, y1 = _CTX["bounds"][b]
    dx = np.maximum(0.0, np.maximum(x0 - vx, vx - x1))
    dy = np.maximum(0.0, np.maximum(y0 - vy, vy - y1))
    lb2 = dx * dx + dy * dy  # squared distance to the bounding box
    out = lb2 > zone * zone
    if not _CTX["is_box"][b]:
        inner = max(0.0, zone - float(np.hypot(x1 - x0, y1 - y0)))
        check = np.flatnonzero(~out & (lb2 > inner * inner))
        if len(check):
            # upper bound: the distance to the nearest boundary point of the block; GEOS
            # only for the vertices that bound leaves undecided
            a, z = _CTX["bpt_ptr"][b], _CTX["bpt_ptr"][b + 1]
            px, py = _CTX["bpt_x"][a:z], _CTX["bpt_y"][a:z]
            cx, cy = vx[check], vy[check]
            ub2 = ((cx[:, None] - px) ** 2 + (cy[:, None] - py) ** 2).min(axis=1)
            check = check[ub2 > zone * zone]
        if len(check):
            out[check] = shapely.distance(_CTX["geoms"][b],
                                          shapely.points(vx[check], vy[check])) > zone
    return out


def _restricted_searches(
    b: int, seeds: np.ndarray, d: np.ndarray, dl: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The reference searches only the links within D + 100 m of the source block (their
    straight vertex-to-vertex geometry). That matters only when a search reached a vertex
    beyond that zone, which needs a seed far from the block (a long road): then both
    searches are redone with the links outside the zone removed (cost set to infinity).

    Only links leaving vertices reached within D can change a result (costs are not
    negative), so only those are tested.
    """
    import scipy.sparse as sp
    import shapely
    from scipy.sparse.csgraph import dijkstra

    D = _CTX["D"]
    zone = D + LINK_ZONE_MARGIN
    vx, vy, g = _CTX["vert_x"], _CTX["vert_y"], _CTX["geoms"][b]
    r = np.flatnonzero(d <= D)
    out_r = _beyond_zone(b, vx[r], vy[r])
    if not out_r.any():
        return d, dl
    outside = np.zeros(len(d), dtype=bool)
    outside[r[out_r]] = True
    out = []
    for key, dist in (("full", d), ("low", dl)):
        graph = _CTX[key]
        rows = _CTX[f"{key}_rows"]
        cand = np.flatnonzero(outside[rows])
        if len(cand) == 0:
            out.append(dist)
            continue
        cols = graph.indices[cand]
        u = rows[cand]
        lines = shapely.linestrings(
            np.stack([vx[u], vy[u], vx[cols], vy[cols]], axis=1).reshape(-1, 2, 2)
        )
        cut = cand[shapely.distance(g, lines) > zone]
        if len(cut) == 0:
            out.append(dist)
            continue
        data = graph.data.copy()
        data[cut] = _INF
        restricted = sp.csr_matrix((data, graph.indices, graph.indptr), shape=graph.shape)
        out.append(
            dijkstra(restricted, directed=True, indices=seeds, min_only=True, limit=_CTX["limit"])
        )
    return out[0], out[1]


def _within_d(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Straight-line prefilter per pair: polygon distance <= D.

    Cheap bounds first: the distance between two points of the polygons is an upper bound
    (accept), the distance between bounding boxes a lower bound (reject); the exact polygon
    distance is computed only in between.
    """
    import shapely

    D, rx, ry = _CTX["D"], _CTX["rep_x"], _CTX["rep_y"]
    dx = np.take(rx, tgt) - np.take(rx, src)
    dy = np.take(ry, tgt) - np.take(ry, src)
    ok = dx * dx + dy * dy <= D * D
    rest = np.flatnonzero(~ok)
    if len(rest) == 0:
        return ok
    bb = _CTX["bounds"]
    sb = bb[src[rest]]
    tb = bb[tgt[rest]]
    dx = np.maximum(0.0, np.maximum(tb[:, 0] - sb[:, 2], sb[:, 0] - tb[:, 2]))
    dy = np.maximum(0.0, np.maximum(tb[:, 1] - sb[:, 3], sb[:, 1] - tb[:, 3]))
    maybe = rest[dx * dx + dy * dy <= D * D]
    if len(maybe):
        g = _CTX["geoms"]
        ok[maybe] = shapely.distance(g[src[maybe]], g[tgt[maybe]]) <= D
    return ok


def _postprocess(
    src: np.ndarray, tgt: np.ndarray, high: np.ndarray, low: np.ndarray
) -> dict[str, np.ndarray]:
    """Prefilter, shared-road rule and detour rule on a chunk of candidate pairs (each
    source block's pairs one run, targets sorted)."""
    keep = _within_d(src, tgt)
    if not keep.all():
        src, tgt, high, low = src[keep], tgt[keep], high[keep], low[keep]
    shared = np.zeros(len(src), dtype=bool)
    if len(src):
        # key (run, target) is sorted: look the (few) road-sharing pairs of each run up in it
        nb, sh_ptr, sh_idx = _CTX["n_blocks"], _CTX["sh_ptr"], _CTX["sh_idx"]
        new = np.empty(len(src), dtype=bool)
        new[0] = True
        np.not_equal(src[1:], src[:-1], out=new[1:])
        key = (np.cumsum(new) - 1) * nb + tgt
        run_block = src[new]
        lo = sh_ptr[run_block]
        cnt = sh_ptr[run_block + 1] - lo
        run_key = np.arange(len(run_block), dtype=np.int64) * nb
        q = np.repeat(run_key, cnt) + sh_idx[_ranges(lo, cnt)]
        pos = np.minimum(np.searchsorted(key, q), len(key) - 1)
        shared[pos[key[pos] == q]] = True
    has_low = low < _INF
    # low / high <= 1.25 (or high = 0); costs are small integers, so the product is exact
    low_stress = shared | (has_low & ((high == 0) | (low <= DETOUR_RATIO * high)))
    return {
        "src": src.astype(np.int32),
        "tgt": tgt.astype(np.int32),
        "high": high.astype(np.int32),
        "low": np.where(has_low, low, NULL_COST).astype(np.int32),
        "ls": low_stress,
    }


def _run_chunk(units: list[tuple[np.ndarray, np.ndarray | None]]) -> dict[str, Any]:
    """Process groups of source blocks (each with its tile's rectangle, or None for the whole
    graph); return their post-processed pairs (``parts``: a list of pair arrays, each block's
    pairs one run of it) and trails (one pickle per chunk)."""
    ptr, idx, nb = _CTX["seed_ptr"], _CTX["seed_idx"], _CTX["n_blocks"]
    if "global_area" not in _CTX:
        _CTX["global_area"] = _global_area()
    parts: list[dict[str, Any]] = []
    buf: dict[str, list[np.ndarray]] = {k: [] for k in ("b", "t", "h", "l")}
    trails: dict[str, list[np.ndarray]] = {k: [] for k in ("th_b", "th_t", "tl_b", "tl_t")}

    def flush() -> None:
        if not buf["t"]:
            return
        lens = np.fromiter((len(x) for x in buf["t"]), dtype=np.int64, count=len(buf["t"]))
        src = np.repeat(np.asarray(buf["b"], dtype=np.int64), lens)
        tgt, high = np.concatenate(buf["t"]), np.concatenate(buf["h"])
        low = np.concatenate(buf["l"])
        is_trail = tgt >= nb
        if is_trail.any():  # trails reached on each network (low-stress: a finite cost)
            ts, tt = src[is_trail], tgt[is_trail] - nb
            trails["th_b"].append(ts)
            trails["th_t"].append(tt)
            reached_low = low[is_trail] < _INF
            trails["tl_b"].append(ts[reached_low])
            trails["tl_t"].append(tt[reached_low])
            keep = ~is_trail
            src, tgt, high, low = src[keep], tgt[keep], high[keep], low[keep]
        parts.append(_postprocess(src, tgt, high, low))
        for v in buf.values():
            v.clear()

    for blocks, rect in units:
        area = None if rect is None else _tile_area(rect)
        if area is None:
            area = _CTX["global_area"]
        for b in blocks.tolist():
            t, h, lo = _search_block(area, b, idx[ptr[b] : ptr[b + 1]])
            buf["b"].append(b)
            buf["t"].append(t)
            buf["h"].append(h)
            buf["l"].append(lo)
            if len(buf["b"]) >= CHUNK_BLOCKS:
                flush()
        if area.verts is not None:
            _CTX["g2l"][area.verts] = -1
    flush()
    out: dict[str, Any] = {"parts": parts}
    for k, v in trails.items():
        out[k] = np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64)
    return out


def _plan_units(searching: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Group the searching blocks in tiles of :data:`TILE_SIZE` (by the centre of their
    bounding box), each with the rectangle of its subgraph: its seeds' bounding box grown by
    D + :data:`TILE_MARGIN`. Blocks with a far seed (see :func:`_restricted_searches`) and
    all blocks when the vertex points are unknown search the whole graph (rectangle None)."""
    far = _CTX["seed_far"]
    small = _CTX["full"].shape[0] < TILE_MIN_VERTICES
    if far is None or small or len(searching) == 0:
        return [(searching, None)]
    is_far = far[searching] > LINK_ZONE_TRIGGER
    units: list[tuple[np.ndarray, np.ndarray | None]] = []
    tiled = searching[~is_far]
    if len(tiled):
        # bounding box of each block's seed vertices
        nb, eb, v = _CTX["n_blocks"], _CTX["seed_block"], _CTX["seed_idx"]
        vx, vy = _CTX["vert_x"][v], _CTX["vert_y"][v]
        sb = np.stack([np.full(nb, _INF), np.full(nb, _INF), np.full(nb, -_INF),
                       np.full(nb, -_INF)], axis=1)  # fmt: skip
        np.minimum.at(sb[:, 0], eb, vx)
        np.minimum.at(sb[:, 1], eb, vy)
        np.maximum.at(sb[:, 2], eb, vx)
        np.maximum.at(sb[:, 3], eb, vy)
        bb = _CTX["bounds"][tiled]
        kx = np.floor((bb[:, 0] + bb[:, 2]) / (2 * TILE_SIZE)).astype(np.int64)
        ky = np.floor((bb[:, 1] + bb[:, 3]) / (2 * TILE_SIZE)).astype(np.int64)
        order = np.lexsort((tiled, kx, ky))
        key = np.stack([ky[order], kx[order]], axis=1)
        cut = np.flatnonzero((key[1:] != key[:-1]).any(axis=1)) + 1
        grow = _CTX["D"] + TILE_MARGIN
        for grp in np.split(tiled[order], cut):
            s = sb[grp]
            rect = np.array([s[:, 0].min() - grow, s[:, 1].min() - grow,
                             s[:, 2].max() + grow, s[:, 3].max() + grow])  # fmt: skip
            units.append((grp, rect))
    if is_far.any():
        units.append((searching[is_far], None))
    return units


def _split_units(units: list, n: int) -> list[list]:
    """``n`` groups of contiguous units with about the same number of blocks (units bigger
    than a group's share are split first: a whole-graph unit of a small city, a dense tile)."""
    total = sum(len(u[0]) for u in units)
    share = max(1, -(-total // n))
    pieces = [(blk[i : i + share], rect) for blk, rect in units for i in range(0, len(blk), share)]
    if not pieces:
        return [units]
    sizes = np.array([len(u[0]) for u in pieces], dtype=np.int64)
    cum = np.cumsum(sizes)
    # group k ends with the piece where the running count reaches k / n of the blocks
    bounds = np.searchsorted(cum, cum[-1] * np.arange(1, n) / n, side="left") + 1
    cuts = [0, *sorted(set(bounds.tolist())), len(pieces)]
    return [pieces[a:b] for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _assemble(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The parts' pairs ordered by source block (each block's pairs are one run of a part,
    targets sorted): the order of a search over the blocks in index order. One copy."""
    dtypes = dict(src=np.int32, tgt=np.int32, high=np.int32, low=np.int32, ls=bool)
    parts = [q for q in parts if len(q["src"])]
    if not parts:
        return {k: np.zeros(0, t) for k, t in dtypes.items()}
    which, start, stop, block = [], [], [], []
    for i, q in enumerate(parts):
        src = q["src"]
        cut = np.flatnonzero(src[1:] != src[:-1]) + 1
        start.append(np.concatenate(([0], cut)))
        stop.append(np.append(cut, len(src)))
        block.append(src[start[-1]])
        which.append(np.full(len(cut) + 1, i))
    blk = np.concatenate(block)
    if (blk[1:] > blk[:-1]).all():  # already in order
        return {k: np.concatenate([q[k] for q in parts]).astype(t, copy=False)
                for k, t in dtypes.items()}  # fmt: skip
    o = np.argsort(blk, kind="stable")
    runs = list(zip(np.concatenate(which)[o].tolist(), np.concatenate(start)[o].tolist(),
                    np.concatenate(stop)[o].tolist()))  # fmt: skip
    return {k: np.concatenate([parts[i][k][a:b] for i, a, b in runs]).astype(t, copy=False)
            for k, t in dtypes.items()}  # fmt: skip


def _zone_context(network: Any, geoms: np.ndarray) -> None:
    """Per-block distance of the farthest seed vertex, vertex coordinates and the CSR row of
    every arc, for the reference's D + 100 m link zone (see :func:`_restricted_searches`)."""
    import shapely

    vx = getattr(network, "vert_x", None)
    vy = getattr(network, "vert_y", None)
    eb, v = _CTX["seed_block"], _CTX["seed_idx"]
    if vx is None or vy is None or len(v) == 0:
        _CTX.update(seed_far=None)
        return
    dist = shapely.distance(geoms[eb], shapely.points(vx[v], vy[v]))
    far = np.zeros(len(geoms))
    np.maximum.at(far, eb, dist)
    bb = shapely.bounds(geoms)
    box_area = (bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1])
    is_box = np.abs(shapely.area(geoms) - box_area) <= 1e-9 * np.maximum(box_area, 1.0)
    vx, vy = np.asarray(vx, float), np.asarray(vy, float)
    order = np.argsort(vx, kind="stable")
    # the blocks' boundary points (CSR): the distance to the nearest one bounds the distance
    # to the block from above (see _beyond_zone)
    pts, owner = shapely.get_coordinates(geoms, return_index=True)
    pt_ptr = np.searchsorted(owner, np.arange(len(geoms) + 1))
    _CTX.update(bpt_x=np.ascontiguousarray(pts[:, 0]), bpt_y=np.ascontiguousarray(pts[:, 1]),
                bpt_ptr=pt_ptr)
    _CTX.update(seed_far=far, vert_x=vx, vert_y=vy, is_box=is_box, vx_order=order,
                vx_sorted=vx[order], g2l=np.full(len(vx), -1, dtype=np.int32))  # fmt: skip
    for key in ("full", "low"):
        gph = _CTX[key]
        _CTX[f"{key}_rows"] = np.repeat(np.arange(gph.shape[0]), np.diff(gph.indptr))


def _trail_segments(s: RunState, n_seg: int) -> tuple[np.ndarray | None, np.ndarray]:
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


def prepare_context(blocks: Any, ways: Any, boundary_geom: Any, network: Any, D: float,
                    seg_trail: np.ndarray | None = None) -> np.ndarray:
    """Fill the module's search context (graphs, entry and seed tables, link-zone data) for
    :func:`connect`, and return the blocks that search (source blocks with a seed road).

    :mod:`pna_engine.incremental` keeps a copy of this context to redo the searches of a few
    blocks on a changed low-stress graph (:func:`search_blocks`).
    """
    import shapely

    nb = len(blocks)
    geoms = np.asarray(blocks.geometry.values)
    way_geoms = np.asarray(ways.geometry.values)
    bs_ptr, bs_idx = block_segments(blocks, ways)
    shapely.prepare(boundary_geom)
    is_source_road = shapely.intersects(boundary_geom, way_geoms)
    source_blocks = np.flatnonzero(shapely.intersects(boundary_geom, geoms))
    rep = shapely.point_on_surface(geoms)
    sh_ptr, sh_idx = _sharing_blocks(bs_ptr, bs_idx, nb, len(way_geoms))
    entry_block = np.repeat(np.arange(nb, dtype=np.int64), np.diff(bs_ptr))
    # the entry table: the block -> road table (block order), then trail k's segments as
    # target n_blocks + k, so one reduction gives the reached blocks and trails
    ent_vert, ent_block = bs_idx, entry_block
    if seg_trail is not None:
        tv = np.flatnonzero(seg_trail >= 0)
        o = np.argsort(seg_trail[tv], kind="stable")
        ent_vert = np.concatenate([bs_idx, tv[o]])
        ent_block = np.concatenate([entry_block, nb + seg_trail[tv[o]]])
    # the seeds: the block -> road entries of source roads (block order)
    is_seed = is_source_road[bs_idx]
    seed_block = entry_block[is_seed]
    seed_ptr = np.zeros(nb + 1, dtype=np.int64)
    np.cumsum(np.bincount(seed_block, minlength=nb), out=seed_ptr[1:])
    _CTX.clear()
    _CTX.update(
        D=D,
        # integer costs: <= D  <=>  < floor(D) + 0.5 (scipy's limit is exclusive)
        limit=float(np.floor(D)) + 0.5,
        full=network.full,
        low=network.low,
        ent_vert=ent_vert,
        ent_block=ent_block,
        # vertex -> positions in the entry table
        ve_ptr=np.concatenate(([0], np.cumsum(np.bincount(ent_vert, minlength=len(way_geoms))))),
        ve_idx=np.argsort(ent_vert, kind="stable"),
        seed_ptr=seed_ptr,
        seed_idx=bs_idx[is_seed],
        seed_block=seed_block,
        bounds=shapely.bounds(geoms),
        rep_x=shapely.get_x(rep),
        rep_y=shapely.get_y(rep),
        geoms=geoms,
        n_blocks=nb,
        sh_ptr=sh_ptr,
        sh_idx=sh_idx,
    )
    _zone_context(network, geoms)
    # blocks that will search: source blocks with a seed road
    return source_blocks[np.diff(seed_ptr)[source_blocks] > 0]


def search_blocks(ctx: dict[str, Any], blocks: np.ndarray) -> dict[str, Any]:
    """Redo the searches of ``blocks`` (sorted block indices) in-process with the context
    ``ctx`` (a copy of the one :func:`prepare_context` filled, possibly with another ``low``
    graph and ``low_rows``); returns their pairs (``_assemble`` arrays) and trails."""
    _CTX.clear()
    _CTX.update(ctx)
    try:
        r = _run_chunk(_plan_units(np.asarray(blocks, dtype=np.int64)))
    finally:
        _CTX.clear()
    out = _assemble(r["parts"])
    for b, t in (("th_b", "th_t"), ("tl_b", "tl_t")):
        o = np.lexsort((r[t], r[b]))
        out[b], out[t] = r[b][o], r[t][o]
    return out


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
    D = float(max_trip_distance)
    nb = len(blocks)
    searching = prepare_context(blocks, ways, boundary_geom, network, D, seg_trail)
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    try:
        # blocks that will search (a seed road): their count x graph size estimates the work
        seeded = len(searching)
        work = float(seeded) * network.full.shape[0]
        units = _plan_units(searching)
        if n_workers > 1 and seeded >= PARALLEL_MIN_BLOCKS and work >= PARALLEL_MIN_WORK:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            chunks = _split_units(units, n_workers * 4)
            ctx = mp.get_context("fork")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as ex:
                try:
                    results = list(ex.map(_run_chunk, chunks))
                except BaseException:  # stopped (SIGTERM, Ctrl-C) or failed: end the workers now
                    _stop_pool(ex)
                    raise
        else:
            results = [_run_chunk(units)]
    finally:
        _CTX.clear()
    p = _assemble([q for r in results for q in r["parts"]])
    for b, t in (("th_b", "th_t"), ("tl_b", "tl_t")):  # by (block, trail)
        bb = np.concatenate([r[b] for r in results])
        tt = np.concatenate([r[t] for r in results])
        o = np.lexsort((tt, bb))
        p[b], p[t] = bb[o], tt[o]
    return Connectivity(
        source=p["src"],
        target=p["tgt"],
        low_stress=p["ls"],
        low_cost=p["low"],
        high_cost=p["high"],
        reachable_blocks=np.bincount(p["src"], minlength=nb).astype(np.int64),
        n_blocks=nb,
        trail_ids=trail_ids if trail_ids is not None else np.zeros(0, np.int64),
        trails_high=(p["th_b"], p["th_t"]),
        trails_low=(p["tl_b"], p["tl_t"]),
    )


def _stop_pool(ex: Any) -> None:
    """Cancel the pending chunks and terminate the pool's workers (instead of letting
    ``shutdown`` wait for the running chunks to finish)."""
    ex.shutdown(wait=False, cancel_futures=True)
    for proc in list((getattr(ex, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()


def compute_connectivity(s: RunState) -> Connectivity:
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
