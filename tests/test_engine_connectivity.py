"""Connectivity rules (BNA-METHOD.md §7, §8) on tiny hand-built graphs."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Polygon, box

from pna_engine import connectivity
from pna_engine.blocks import block_road_pairs
from pna_engine.connectivity import NULL_COST, connect
from pna_engine.network import _csr


class _Net:
    """Just the two graphs (and optionally the vertex points) the connectivity phase reads."""

    def __init__(self, n, full_arcs, low_arcs, xy=None):
        if xy is not None:
            self.vert_x = np.array([p[0] for p in xy], dtype=float)
            self.vert_y = np.array([p[1] for p in xy], dtype=float)

        def csr(arcs):
            if not arcs:
                return _csr(n, np.zeros(0, int), np.zeros(0, int), np.zeros(0, int))
            a = np.array(arcs, dtype=np.int64)
            return _csr(n, a[:, 0], a[:, 1], a[:, 2])

        self.full = csr(full_arcs)
        self.low = csr(low_arcs)


def _ways(n: int, outside: tuple[int, ...] = ()) -> gpd.GeoDataFrame:
    """n short segments; those in ``outside`` lie far outside the boundary box."""
    geoms = [
        LineString([(10_000 + i, 10_000), (10_000 + i, 10_001)])
        if i in outside
        else LineString([(i, 0), (i, 1)])
        for i in range(n)
    ]
    return gpd.GeoDataFrame({"road_id": np.arange(101, 101 + n)}, geometry=geoms, crs=32635)


def _blocks(road_lists, positions=None) -> gpd.GeoDataFrame:
    positions = positions or [(0, 0)] * len(road_lists)
    return gpd.GeoDataFrame(
        {
            "geoid20": [f"b{i}" for i in range(len(road_lists))],
            "road_ids": [[101 + r for r in rl] for rl in road_lists],
        },
        geometry=[box(x, y, x + 10, y + 10) for x, y in positions],
        crs=32635,
    )


BOUNDARY = box(-50, -50, 500, 500)


def _pairs(conn) -> dict[tuple[int, int], tuple[bool, int, int]]:
    return {
        (int(s), int(t)): (bool(ls), int(lc), int(hc))
        for s, t, ls, lc, hc in zip(
            conn.source, conn.target, conn.low_stress, conn.low_cost, conn.high_cost
        )
    }


def _chain(n: int, cost: int = 100):
    arcs = []
    for i in range(n - 1):
        arcs += [(i, i + 1, cost), (i + 1, i, cost)]
    return arcs


def test_bound_is_inclusive_and_float_limit_is_respected():
    # chain 0-1-2-3-4, 100 per hop; block 0 seeds road 0; blocks 1..4 hold roads 1..4
    net = _Net(5, _chain(5), _chain(5))
    blocks = _blocks([[0], [1], [2], [3], [4]])
    conn = connect(blocks, _ways(5), BOUNDARY, net, 300.0)
    p = _pairs(conn)
    assert p[(0, 3)] == (True, 300, 300)  # exactly D: kept (<= D)
    assert (0, 4) not in p  # 400 > D
    conn = connect(blocks, _ways(5), BOUNDARY, net, 299.9)
    assert (0, 3) not in _pairs(conn)  # 300 > 299.9
    assert conn.reachable_blocks[0] == 3  # itself, 1, 2


def test_multi_seed_minimum_and_seed_cost_zero():
    net = _Net(6, _chain(6), _chain(6))
    blocks = _blocks([[0, 5], [3], [5]])
    p = _pairs(connect(blocks, _ways(6), BOUNDARY, net, 1000.0))
    assert p[(0, 1)][2] == 200  # min(300 from road 0, 200 from road 5)
    assert p[(0, 2)] == (True, 0, 0)  # a seed itself costs 0
    assert p[(0, 0)] == (True, 0, 0)


def test_detour_ratio_exactly_1_25_is_low_stress():
    # full: 0 -> 1 costs 400; low-stress network only has the detour 0 -> 2 -> 1
    def run(detour_cost_second_leg):
        full = [(0, 1, 400), (0, 2, 250), (2, 1, detour_cost_second_leg)]
        low = [(0, 2, 250), (2, 1, detour_cost_second_leg)]
        blocks = _blocks([[0], [1]])
        return _pairs(connect(blocks, _ways(3), BOUNDARY, _Net(3, full, low), 2680.0))

    assert run(250)[(0, 1)] == (True, 500, 400)  # 500 / 400 = 1.25 exactly
    assert run(251)[(0, 1)] == (False, 501, 400)  # 501 / 400 > 1.25


def test_zero_full_cost_makes_any_low_stress_path_low_stress():
    # the reference: low_stress_cost IS NOT NULL AND (COALESCE(high_stress_cost, 0) = 0 OR
    # low / high <= 1.25). A zero-cost high-stress link (two segments shorter than 0.5 m) with
    # a 50 m low-stress detour: no ratio is taken, the pair is low stress.
    def run(direct_cost):
        full = [(0, 1, direct_cost), (0, 2, 25), (2, 1, 25)]
        low = [(0, 2, 25), (2, 1, 25)]
        blocks = _blocks([[0], [1]])
        return _pairs(connect(blocks, _ways(3), BOUNDARY, _Net(3, full, low), 2680.0))

    assert run(0)[(0, 1)] == (True, 50, 0)
    assert run(1)[(0, 1)] == (False, 50, 1)  # 50 / 1 > 1.25


def test_shared_road_pair_is_low_stress_without_low_stress_path():
    # no low-stress links at all; blocks 0 and 1 share road 1
    full = _chain(3)
    blocks = _blocks([[0, 1], [1], [2]])
    p = _pairs(connect(blocks, _ways(3), BOUNDARY, _Net(3, full, []), 2680.0))
    assert p[(0, 1)] == (True, 0, 0)  # road 1 is one of block 0's seeds
    assert p[(0, 2)] == (False, NULL_COST, 100)  # from seed road 1
    assert p[(1, 0)][0] is True  # shares road 1
    assert p[(2, 1)] == (False, NULL_COST, 100)


def test_seeds_are_roads_intersecting_the_boundary():
    # block 0's only road lies outside the boundary: no seeds, no pairs, even with itself
    net = _Net(3, _chain(3), _chain(3))
    blocks = _blocks([[0], [1], [1, 2]])
    conn = connect(blocks, _ways(3, outside=(0,)), BOUNDARY, net, 2680.0)
    assert conn.reachable_blocks[0] == 0
    assert 0 not in set(conn.source.tolist())
    # other blocks still reach block 0 through road 0
    assert (1, 0) in _pairs(conn)


def test_straight_line_prefilter():
    net = _Net(2, _chain(2), _chain(2))
    # block 1 is 3000 m away from block 0 (polygon distance) though the network says 100
    blocks = _blocks([[0], [1]], positions=[(0, 0), (3010, 0)])
    boundary = box(-50, -50, 4000, 500)
    p = _pairs(connect(blocks, _ways(2), boundary, net, 2680.0))
    assert (0, 1) not in p and (0, 0) in p
    blocks = _blocks([[0], [1]], positions=[(0, 0), (2690, 0)])  # exactly 2680 apart
    p = _pairs(connect(blocks, _ways(2), boundary, net, 2680.0))
    assert (0, 1) in p


def test_parallel_workers_give_the_same_pairs(monkeypatch):
    n = 40
    rng = np.random.default_rng(1)
    arcs = [(i, j, int(c)) for i in range(n) for j in range(n) if i != j and rng.random() < 0.08
            for c in [rng.integers(0, 900)]]  # fmt: skip
    low = [a for a in arcs if a[2] % 3]
    road_lists = [[i, (i * 7) % n] for i in range(n)]
    blocks = _blocks(road_lists)
    one = connect(blocks, _ways(n), BOUNDARY, _Net(n, arcs, low), 1000.0, workers=1)
    monkeypatch.setattr(connectivity, "PARALLEL_MIN_BLOCKS", 1)
    monkeypatch.setattr(connectivity, "PARALLEL_MIN_WORK", 0)
    two = connect(blocks, _ways(n), BOUNDARY, _Net(n, arcs, low), 1000.0, workers=2)
    assert _pairs(one) == _pairs(two)
    assert len(one) > n  # the test graph is connected enough to matter


def _lattice_city(n: int = 12, spacing: float = 100.0, seed: int = 3):
    """An n x n lattice of vertices (segment midpoints) with two-way links costing at least
    their length, a random low-stress subset, one small block at each vertex holding its road
    (every 7th road also in a second block), and a far block whose seed road is 500 m away."""
    rng = np.random.default_rng(seed)
    xy = [(spacing * (k % n), spacing * (k // n)) for k in range(n * n)]
    arcs = []
    for k in range(n * n):
        for m in (k + 1 if (k + 1) % n else None, k + n if k + n < n * n else None):
            if m is not None:
                c = int(spacing + rng.integers(0, 40))
                arcs += [(k, m, c), (m, k, c)]
    low = [a for a in arcs if rng.random() < 0.75]
    roads = [[k] for k in range(n * n)] + [[k] for k in range(0, n * n, 7)]  # some share
    positions = [(x - 5, y - 5) for x, y in xy] + [(x - 5, y) for x, y in xy[::7]]
    roads.append([0])  # the far block: seed vertex 0 at (0, 0), block at (400, -300)
    positions.append((400, -300))
    seg_trail = np.full(n * n, -1)
    seg_trail[[5, 6, 7]] = 0
    seg_trail[[n * n - 1]] = 1
    return _Net(n * n, arcs, low, xy), _blocks(roads, positions), _ways(n * n), seg_trail


def _everything(conn):
    return (_pairs(conn), conn.source.tolist(), conn.target.tolist(),
            [a.tolist() for a in (*conn.trails_high, *conn.trails_low)])  # fmt: skip


def test_local_searches_give_the_same_pairs_as_whole_graph_searches(monkeypatch):
    # searches on a tile's subgraph (and those redone on the whole graph because they reached
    # a vertex with a link leaving it) give the pairs, order and trails of whole-graph searches
    net, blocks, ways, seg_trail = _lattice_city()
    boundary = box(-1000, -1000, 3000, 3000)

    def run(workers=1):
        calls = {"search": 0, "local": 0}
        search, tile = connectivity._search_block, connectivity._tile_area

        def count_search(area, b, seeds):
            calls["search"] += 1
            return search(area, b, seeds)

        def count_tile(rect):
            area = tile(rect)
            calls["local"] += area is not None
            return area

        with monkeypatch.context() as m:
            m.setattr(connectivity, "_search_block", count_search)
            m.setattr(connectivity, "_tile_area", count_tile)
            conn = connect(blocks, ways, boundary, net, 450.0, seg_trail=seg_trail,
                           trail_ids=np.array([1, 2]), workers=workers)  # fmt: skip
        return _everything(conn), calls

    monkeypatch.setattr(connectivity, "TILE_MIN_VERTICES", 0)
    monkeypatch.setattr(connectivity, "TILE_MAX_SHARE", 0.0)  # every tile: the whole graph
    whole, calls = run()
    assert calls["local"] == 0
    n_blocks = calls["search"]
    monkeypatch.setattr(connectivity, "TILE_MAX_SHARE", 1.0)
    monkeypatch.setattr(connectivity, "TILE_SIZE", 300.0)
    local, calls = run()
    assert calls["local"] >= 9 and local == whole
    assert calls["search"] < n_blocks + 10  # links cost their length: the margin is rarely left
    monkeypatch.setattr(connectivity, "PARALLEL_MIN_BLOCKS", 1)
    monkeypatch.setattr(connectivity, "PARALLEL_MIN_WORK", 0)
    assert run(workers=2)[0] == whole  # tiles split over worker processes
    monkeypatch.setattr(connectivity, "PARALLEL_MIN_BLOCKS", 10**9)
    monkeypatch.setattr(connectivity, "TILE_MARGIN", -400.0)  # subgraphs too small: redone
    redone, calls = run()
    assert redone == whole and calls["search"] > n_blocks + 50
    pairs, src, tgt, _ = whole
    assert len(pairs) > 1000 and len(blocks) - 1 in src  # the far block has pairs
    key = np.array(src) * 1000 + np.array(tgt)
    assert (np.diff(key) > 0).all()  # by source block, then target


def test_pairs_frame_has_reference_columns_and_nulls():
    net = _Net(3, _chain(3), [])
    blocks = _blocks([[0], [1], [2]])
    conn = connect(blocks, _ways(3), BOUNDARY, net, 2680.0)
    df = conn.pairs_frame(blocks["geoid20"])
    assert list(df.columns) == [
        "source_blockid20",
        "target_blockid20",
        "low_stress",
        "low_stress_cost",
        "high_stress",
        "high_stress_cost",
    ]
    row = df[(df.source_blockid20 == "b0") & (df.target_blockid20 == "b2")].iloc[0]
    assert pd.isna(row.low_stress_cost) and row.high_stress_cost == 200 and row.high_stress


def test_block_road_assignment_rules():
    # block 100 x 100 at the origin; 15 m buffer
    blk = np.array([box(0, 0, 100, 100)])
    ways = np.array(
        [
            LineString([(10, 10), (90, 10)]),  # entirely inside
            LineString([(50, 90), (50, 200)]),  # 10 + 15 = 25 m inside the buffer: no
            LineString([(50, 70), (50, 200)]),  # 45 m inside: yes
            LineString([(-100, -14), (200, -14)]),  # along the edge inside the buffer: yes
            LineString([(300, 300), (400, 300)]),  # far away
            LineString([(50, 100 + 15 - 31), (50, 300)]),  # 31 m inside: yes (> 30)
            LineString([(60, 100 + 15 - 29), (60, 300)]),  # 29 m inside: no
        ]
    )
    bi, wi = block_road_pairs(blk, ways)
    assert bi.tolist() == [0, 0, 0, 0]
    assert wi.tolist() == [0, 2, 3, 5]


def test_short_roads_need_to_lie_wholly_in_the_buffer():
    # census_blocks.sql: ST_Intersects(buffer, road) AND (ST_Contains(buffer, road) OR
    # ST_Length(ST_Intersection(buffer, road)) > 30): a road shorter than 30 m belongs to the
    # block only when the 15 m buffer contains it entirely.
    blk = np.array([box(0, 0, 100, 100)])
    ways = np.array(
        [
            LineString([(40, 50), (50, 50)]),  # 10 m, inside the block: contained, yes
            LineString([(50, 105), (50, 114)]),  # 9 m, inside the buffer only: yes
            LineString([(50, 110), (50, 120)]),  # 5 of its 10 m inside: no
            LineString([(115, 50), (140, 50)]),  # touches the buffer at one point: no
            LineString([(-30, 50), (-16, 50)]),  # ends 1 m outside the 15 m buffer: no
        ]
    )
    bi, wi = block_road_pairs(blk, ways)
    assert wi.tolist() == [0, 1]
    # a block of two parts: one buffer around both (a road between them, 20 m from each
    # part, lies outside it)
    two = np.array([box(0, 0, 10, 10).union(box(50, 0, 60, 10))])
    ways = np.array([LineString([(30, 0), (30, 10)]), LineString([(55, 12), (55, 20)])])
    assert block_road_pairs(two, ways)[1].tolist() == [1]


@pytest.mark.parametrize("D", [2680.0])
def test_trail_reachability_recorded(D):
    net = _Net(4, _chain(4), _chain(2))
    blocks = _blocks([[0], [3]])
    seg_trail = np.array([-1, -1, 0, 0])
    conn = connect(blocks, _ways(4), BOUNDARY, net, D, seg_trail=seg_trail,
                   trail_ids=np.array([7]))  # fmt: skip
    hb, ht = conn.trails_high
    lb, lt = conn.trails_low
    assert set(zip(hb.tolist(), ht.tolist())) == {(0, 0), (1, 0)}
    assert set(zip(lb.tolist(), lt.tolist())) == {(1, 0)}  # block 0's low network stops at 1


def test_compute_connectivity_phase_with_trails():
    from types import SimpleNamespace

    from pna_engine.params import Params

    net = _Net(4, _chain(4), _chain(2))
    ways = _ways(4)
    paths = pd.DataFrame(
        {"path_id": [5, 6], "path_length": [5000, 100], "bbox_length": [3400, 50],
         "road_ids": [[103, 104], [101]]}
    )  # fmt: skip
    s = SimpleNamespace(
        params=Params(boundary="b", output="o", workers=1),
        blocks=_blocks([[0], [3]]),
        ways=ways,
        network=net,
        boundary=gpd.GeoDataFrame(geometry=[BOUNDARY], crs=32635),
        paths=paths,
        counts={},
    )
    conn = connectivity.compute_connectivity(s)
    assert s.counts["connected_pairs"] == len(conn) == 4
    assert conn.trail_ids.tolist() == [5]  # path 6 is too short to be a trail
    assert set(zip(*[a.tolist() for a in conn.trails_high])) == {(0, 0), (1, 0)}
    assert set(zip(*[a.tolist() for a in conn.trails_low])) == {(1, 0)}


def test_links_beyond_d_plus_100_of_the_block_are_not_searched():
    # the reference searches only links within D + 100 m of the source block (their straight
    # vertex-to-vertex line). Block A (at the origin) seeds vertex 0, 190 m away (a long road).
    xy = [(200, 5), (600, 5), (650, 5), (100, 5)]
    arcs = [(0, 1, 100), (1, 2, 100), (1, 3, 100)]
    # 0->1 runs from x=200 to 600 (190 m from A): kept; 1->2 lies 590 m away (> 300 + 100):
    # not searched; 1->3 comes back to x=100: kept.
    blocks = _blocks([[0], [2], [3]])
    p = _pairs(connect(blocks, _ways(4), BOUNDARY, _Net(4, arcs, arcs, xy), 300.0))
    assert (0, 2) in p and p[(0, 2)][2] == 200
    assert (0, 1) not in p  # road 2 is only reachable through the cut link
    without_points = _pairs(connect(blocks, _ways(4), BOUNDARY, _Net(4, arcs, arcs), 300.0))
    assert (0, 1) in without_points  # the rule needs the vertex points


@pytest.mark.parametrize("shape", ["box", "triangle"])
@pytest.mark.parametrize("tiles", [False, True])
def test_link_zone_holds_for_near_seeds_when_costs_round_down(monkeypatch, tiles, shape):
    # A link costs its rounded half-lengths, integer-divided: up to ~1 m less than the
    # straight distance between its vertices. On a long straight chain of short segments the
    # search then reaches beyond D + 100 m of the block even from a seed next to it, and the
    # reference (links searched only within D + 100 m) stops there.
    D = 1000.0
    n = 111
    xy = [(80 + 10.9 * i, 5) for i in range(n)]  # seed vertex 0 is 70 m from block A
    arcs = [(i, i + 1, 10) for i in range(n - 1)] + [(i + 1, i, 10) for i in range(n - 1)]
    # vertex 95 (x = 1115.5, cost 950) is reached through a link that starts inside the zone;
    # the link 95 -> 96 lies wholly beyond 1100 m of A, so 96, 97, ... are never reached.
    blocks = _blocks([[0], [95], [97]], positions=[(0, 0), (990, 0), (995, 0)])
    if shape == "triangle":  # not a box: exact distances to the polygon (same nearest edge)
        blocks.loc[0, "geometry"] = Polygon([(0, 0), (10, 0), (10, 10)])
    boundary = box(-50, -50, 2000, 500)
    if tiles:
        monkeypatch.setattr(connectivity, "TILE_MIN_VERTICES", 0)
        monkeypatch.setattr(connectivity, "TILE_MAX_SHARE", 1.0)
    p = _pairs(connect(blocks, _ways(n), boundary, _Net(n, arcs, arcs, xy), D))
    assert p[(0, 1)] == (True, 950, 950)
    assert (0, 2) not in p  # its road (cost 970 <= D) lies beyond the link zone
    assert p[(2, 0)][2] == 970  # from block C, 70 m away and inside its own zone
