"""Routing network rules (BNA-METHOD.md §6) on hand-built junctions."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import LineString

from pna_engine.network import azimuth_deg, build_from_tables


def _ways(rows: list[dict]) -> gpd.GeoDataFrame:
    df = pd.DataFrame(rows)
    for c in ("one_way", "ft_seg_stress", "tf_seg_stress", "ft_int_stress", "tf_int_stress"):
        if c not in df:
            df[c] = None
    return gpd.GeoDataFrame(df, geometry="geometry", crs=32635)


def _ints(ids) -> pd.DataFrame:
    return pd.DataFrame({"int_id": list(ids)})


def _link(net, src_road: int, tgt_road: int, int_id: int) -> pd.Series:
    t = net.link_table()
    sel = t[
        (t.source_road_id == src_road) & (t.target_road_id == tgt_road) & (t.int_id == int_id)
    ]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def _four_way(r_ft_int_stress: int) -> gpd.GeoDataFrame:
    """§14.5/§14.6: R (residential, ft into I=1) meets W-east/W-west (primary) and R2."""
    return _ways(
        [
            # R runs north into I: length 101.6
            dict(road_id=1, intersection_from=10, intersection_to=1, ft_seg_stress=1,
                 tf_seg_stress=1, ft_int_stress=r_ft_int_stress, tf_int_stress=1,
                 geometry=LineString([(0, -101.6), (0, 0)])),
            # R2 continues north: length 88.4
            dict(road_id=2, intersection_from=1, intersection_to=20, ft_seg_stress=1,
                 tf_seg_stress=1, ft_int_stress=1, tf_int_stress=1,
                 geometry=LineString([(0, 0), (0, 88.4)])),
            dict(road_id=3, intersection_from=1, intersection_to=30, ft_seg_stress=3,
                 tf_seg_stress=3, ft_int_stress=1, tf_int_stress=1,
                 geometry=LineString([(0, 0), (100, 0)])),  # W-east
            dict(road_id=4, intersection_from=1, intersection_to=40, ft_seg_stress=3,
                 tf_seg_stress=3, ft_int_stress=1, tf_int_stress=1,
                 geometry=LineString([(0, 0), (-100, 0)])),  # W-west
        ]
    )  # fmt: skip


def test_worked_example_14_6_rightmost_turn_stress_and_cost():
    net = build_from_tables(_four_way(3), _ints([1, 10, 20, 30, 40]))
    east = _link(net, 1, 3, 1)
    straight = _link(net, 1, 2, 1)
    west = _link(net, 1, 4, 1)
    assert (east.turn_angle, straight.turn_angle, west.turn_angle) == (90, 0, 270)
    # the right turn is the only non-crossing link from R at I
    assert not east.int_crossing and straight.int_crossing and west.int_crossing
    assert east.int_stress == 1 and east.link_stress == 3  # W is high stress
    assert straight.int_stress == 3 and straight.link_stress == 3
    # cost: lengths 101.6 -> 102 and 88.4 -> 88, floor(190 / 2) = 95
    assert straight.source_road_length == 102 and straight.target_road_length == 88
    assert straight.link_cost == (102 + 88) // 2 == 95
    # the low-stress CSR graph has no arc R -> R2
    assert net.low[0, 1] == 0 and net.full[0, 1] == 95


def test_signal_makes_straight_link_low_stress():
    net = build_from_tables(_four_way(1), _ints([1, 10, 20, 30, 40]))
    assert _link(net, 1, 2, 1).link_stress == 1
    assert net.low[0, 1] == 95


def test_one_way_combinations():
    # A: ft one-way 1 -> 2; B two-way 2 - 3; C two-way 0 - 1; D: tf one-way drawn 2 -> 4
    ways = _ways(
        [
            dict(road_id=1, intersection_from=1, intersection_to=2, one_way="ft",
                 geometry=LineString([(0, 0), (100, 0)])),
            dict(road_id=2, intersection_from=2, intersection_to=3,
                 geometry=LineString([(100, 0), (200, 0)])),
            dict(road_id=3, intersection_from=0, intersection_to=1,
                 geometry=LineString([(-100, 0), (0, 0)])),
            dict(road_id=4, intersection_from=2, intersection_to=4, one_way="tf",
                 geometry=LineString([(100, 0), (100, 100)])),
        ]
    )  # fmt: skip
    net = build_from_tables(ways, _ints([0, 1, 2, 3, 4]))
    pairs = set(zip(net.road_id[net.source], net.road_id[net.target], net.int_id))
    assert (1, 2, 2) in pairs  # ft arrives at its to-end
    assert (3, 1, 1) in pairs  # ft leaves from its from-end
    assert (2, 1, 2) not in pairs  # cannot enter an ft road at its to-end
    assert (1, 3, 1) not in pairs  # ft cannot arrive at its from-end
    # D is tf: travel from intersection 4 to 2; it arrives at 2 (its from) and leaves from 4
    assert (4, 2, 2) in pairs and (4, 1, 2) not in pairs  # cannot enter ft road 1 at its to
    assert (2, 4, 2) not in pairs  # cannot enter a tf road at its from-end
    assert (1, 4, 2) not in pairs
    # source_road_dir labels: A arrives at its to -> ft; D arrives at its from -> tf
    t = net.link_table()
    assert set(t[t.source_road_id == 1].source_road_dir) == {"ft"}
    assert set(t[t.source_road_id == 4].source_road_dir) == {"tf"}
    # no U-turn links and no links through unknown intersections
    assert not (net.source == net.target).any()
    net2 = build_from_tables(ways, _ints([0, 1, 3, 4]))  # intersection 2 missing
    assert 2 not in set(net2.int_id)


def test_uturn_quirk_b15():
    # A arrives northbound at I; B leaves back south (exact 180 turn), C turns right (90)
    ways = _ways(
        [
            dict(road_id=1, intersection_from=5, intersection_to=1,
                 geometry=LineString([(0, -100), (0, 0)])),
            dict(road_id=2, intersection_from=1, intersection_to=6,
                 geometry=LineString([(0, 0), (0, -50)])),
            dict(road_id=3, intersection_from=1, intersection_to=7,
                 geometry=LineString([(0, 0), (100, 0)])),
        ]
    )  # fmt: skip
    ints = _ints([1, 5, 6, 7])
    quirky = build_from_tables(ways, ints, uturn_is_rightmost=True)
    assert _link(quirky, 1, 2, 1).turn_angle == 180
    assert not _link(quirky, 1, 2, 1).int_crossing  # sin(180°) > 0 in double precision
    assert _link(quirky, 1, 3, 1).int_crossing
    fixed = build_from_tables(ways, ints, uturn_is_rightmost=False)
    assert _link(fixed, 1, 2, 1).int_crossing
    assert not _link(fixed, 1, 3, 1).int_crossing


def test_straight_preferred_over_left_when_no_right_turn():
    ways = _ways(
        [
            dict(road_id=1, intersection_from=5, intersection_to=1,
                 geometry=LineString([(0, -100), (0, 0)])),
            dict(road_id=2, intersection_from=1, intersection_to=6,
                 geometry=LineString([(0, 0), (0, 100)])),  # straight
            dict(road_id=3, intersection_from=1, intersection_to=7,
                 geometry=LineString([(0, 0), (-100, 10)])),  # left
        ]
    )  # fmt: skip
    net = build_from_tables(ways, _ints([1, 5, 6, 7]))
    assert not _link(net, 1, 2, 1).int_crossing
    assert _link(net, 1, 3, 1).int_crossing


def test_azimuth_is_clockwise_from_north_rounded_half_even():
    assert azimuth_deg(0, 0, 0, 1) == 0
    assert azimuth_deg(0, 0, 1, 0) == 90
    assert azimuth_deg(0, 0, -1, 0) == 270
    # exact ties (the float azimuth is exactly x.5 here) round to even like PostgreSQL
    for deg, expected in ((0.5, 0), (2.5, 2), (45.5, 46), (90.5, 90)):
        x, y = np.sin(np.radians(deg)), np.cos(np.radians(deg))
        assert np.degrees(np.arctan2(x, y)) == deg
        assert azimuth_deg(0, 0, x, y) == expected
    # -0.5 degrees is 359.5 clockwise -> 360 (even), which the turn angle's mod 360 absorbs
    x, y = np.sin(np.radians(-0.5)), np.cos(np.radians(-0.5))
    assert azimuth_deg(0, 0, x, y) == 360
    assert np.isnan(azimuth_deg(1, 1, 1, 1))  # coincident points: undefined


def test_undefined_turn_angle_is_the_rightmost_turn():
    # Z is a zero-length segment (two distinct nodes at the same point): its azimuth is
    # undefined, so the link A -> Z has a NULL turn angle. The reference orders
    # `(sin(radians(turn_angle)) > 0)::INT DESC`, and PostgreSQL puts NULLs first in a
    # descending sort: A -> Z is A's non-crossing link at I, not the right turn A -> C.
    ways = _ways(
        [
            dict(road_id=1, intersection_from=5, intersection_to=1, ft_seg_stress=1,
                 tf_seg_stress=1, ft_int_stress=3, tf_int_stress=3,
                 geometry=LineString([(0, -100), (0, 0)])),
            dict(road_id=2, intersection_from=1, intersection_to=8, ft_seg_stress=1,
                 tf_seg_stress=1, geometry=LineString([(0, 0), (0, 0)])),
            dict(road_id=3, intersection_from=1, intersection_to=7, ft_seg_stress=1,
                 tf_seg_stress=1, geometry=LineString([(0, 0), (100, 0)])),
        ]
    )  # fmt: skip
    net = build_from_tables(ways, _ints([1, 5, 7, 8]))
    to_z, right = _link(net, 1, 2, 1), _link(net, 1, 3, 1)
    assert pd.isna(to_z.turn_angle) and right.turn_angle == 90
    assert not to_z.int_crossing and right.int_crossing
    # the crossing keeps A's intersection stress: the right turn is not low stress here
    assert to_z.link_stress == 1 and right.int_stress == 3 and right.link_stress == 3


def test_segments_sharing_both_ends_and_a_loop():
    # S1 and S2 both join intersections 1 and 2 (a link at each); L is a loop at 2 (from =
    # to = 2): one link into it and one out of it per neighbour, no link to itself.
    ways = _ways(
        [
            dict(road_id=1, intersection_from=1, intersection_to=2,
                 geometry=LineString([(0, 0), (100, 0)])),
            dict(road_id=2, intersection_from=2, intersection_to=1,
                 geometry=LineString([(100, 0), (50, 50), (0, 0)])),
            dict(road_id=3, intersection_from=2, intersection_to=2,
                 geometry=LineString([(100, 0), (150, 0), (150, 50), (100, 0)])),
        ]
    )  # fmt: skip
    net = build_from_tables(ways, _ints([1, 2]))
    t = net.link_table()
    got = sorted(zip(t.int_id, t.source_road_id, t.target_road_id))
    assert got == [(1, 1, 2), (1, 2, 1), (2, 1, 2), (2, 1, 3), (2, 2, 1), (2, 2, 3),
                   (2, 3, 1), (2, 3, 2)]  # fmt: skip
    # the loop's length is 50 + 50 + 50·√2 = 170.7 -> 171; its midpoint (85.4 m along) is
    # (150, 35.36). Arriving at 2 = its intersection_to: 'ft', bearing midpoint -> end point
    # (100, 0) = 180 + atan(50 / 35.36) = 234.7 -> 235; leaving: end point -> midpoint = 55.
    into, out = _link(net, 1, 3, 2), _link(net, 3, 1, 2)
    assert (into.target_road_dir, into.target_road_azi, into.target_road_length) == ("ft", 55, 171)
    assert (out.source_road_dir, out.source_road_azi) == ("ft", 235)
    # S1 arrives at 2 eastbound (90): the loop is a 325° turn, S2 (bearing 315 from (100, 0)
    # to its midpoint (50, 50)) a 225° turn; no right turn, so the slightest left (the loop)
    # is the non-crossing one. Cost S1 -> loop: (100 + 171) // 2 = 135.
    assert (into.turn_angle, into.int_crossing, into.link_cost) == (325, False, 135)
    assert _link(net, 1, 2, 2).turn_angle == 225 and _link(net, 1, 2, 2).int_crossing


def test_link_stress_ignores_null_parts():
    # greatest() ignores NULLs: NULL segment stresses with a non-crossing turn give 1; with
    # every part NULL the link stress is NULL and the link is not in the low-stress network
    # (it requires link_stress = 1). Roads 2 and 3 have no stress values at all.
    ways = _ways(
        [
            dict(road_id=1, intersection_from=5, intersection_to=1, ft_int_stress=3,
                 geometry=LineString([(0, -100), (0, 0)])),
            dict(road_id=2, intersection_from=1, intersection_to=7,
                 geometry=LineString([(0, 0), (100, 0)])),  # right turn from road 1
            dict(road_id=3, intersection_from=1, intersection_to=6,
                 geometry=LineString([(0, 0), (-100, 0)])),  # left turn from road 1
        ]
    )  # fmt: skip
    net = build_from_tables(ways, _ints([1, 5, 6, 7]))
    right, left = _link(net, 1, 2, 1), _link(net, 1, 3, 1)
    assert pd.isna(right.source_stress) and pd.isna(right.target_stress)
    assert not right.int_crossing and right.link_stress == 1
    assert left.int_crossing and left.int_stress == 3 and left.link_stress == 3
    # road 3 arrives at 1 heading east (90): road 1 (south, 180) is its right turn, road 2
    # (east, 90) straight on, a crossing with road 3's NULL tf_int_stress: all parts NULL
    straight = _link(net, 3, 2, 1)
    assert straight.turn_angle == 0 and straight.int_crossing
    assert pd.isna(straight.int_stress) and pd.isna(straight.link_stress)
    assert net.low[0, 1] == 100 and net.low[2, 1] == 0 and net.full[2, 1] == 100
