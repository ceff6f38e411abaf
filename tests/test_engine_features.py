"""Way and intersection features (BNA-METHOD §2.4.4, §3): every rule row of the spec tables.

Each table's cases are written as small OSM ways into one file ("stars": the test way from
``a`` to a hub, plus an untagged residential connector from the hub, so that orphan removal
keeps the test way), run through import -> features -> stress, and the columns are checked
against values worked out from the spec.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
import pytest
from osmfactory import LAT0, LON0, grid_nodes, run_to_stress

M = 3.28084


def star_run(tmp_path, cases: list[dict[str, str]], **params: Any) -> Any:
    """One engine run with one star per case; returns ways indexed by test-way osm_id."""
    nodes: dict[int, Any] = {}
    ways: dict[int, Any] = {}
    for i, tags in enumerate(cases):
        x, y = -1400 + (i % 20) * 140, -1400 + (i // 20) * 140
        a, h, c = 10_000 + 3 * i, 10_001 + 3 * i, 10_002 + 3 * i
        nodes.update(grid_nodes(LON0, LAT0, {a: (x, y), h: (x + 60, y), c: (x + 120, y)}))
        ways[1000 + i] = ([a, h], tags)
        ways[5000 + i] = ([h, c], {"highway": "residential"})
    s = run_to_stress(tmp_path, nodes, ways, **params)
    return s.ways.set_index(s.ways["osm_id"].astype("int64"))


def value(ways: pd.DataFrame, i: int, col: str) -> Any:
    if 1000 + i not in ways.index:
        return "deleted"
    v = ways.loc[1000 + i, col]
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def pg_int(x: float) -> int:
    """PostgreSQL float -> integer (ties to even)."""
    return int(Decimal(repr(x)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def kmh_to_mph(k: int) -> int:
    """§3.5: round(k / 1.609 / 5) * 5 with numeric rounding (half away from zero)."""
    return int((Decimal(k) / Decimal("1.609") / 5).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 5


# --------------------------------------------------------------------------- §3.1 one_way_car
ONE_WAY = [
    ({"oneway": "yes"}, "ft"), ({"oneway": "1"}, "ft"), ({"oneway": " yes "}, "ft"),
    ({"oneway": "-1"}, "tf"), ({"oneway": "true"}, None), ({"oneway": "reversible"}, None),
    ({"oneway": "no"}, None), ({}, None), ({"junction": "roundabout"}, None),
    # SQL trim() removes spaces only: other whitespace keeps the value from matching
    ({"oneway": "  -1"}, "tf"), ({"oneway": "yes\t"}, None), ({"oneway": "-1\u00a0"}, None),
]


@pytest.fixture(scope="module")
def one_way_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("oneway"),
                    [{"highway": "residential", **t} for t, _ in ONE_WAY])


@pytest.mark.parametrize("i", range(len(ONE_WAY)), ids=[str(t) for t, _ in ONE_WAY])
def test_one_way_car(one_way_ways, i):
    assert value(one_way_ways, i, "one_way_car") == ONE_WAY[i][1]


def test_motorway_without_oneway_is_two_way(tmp_path):
    ways = star_run(tmp_path, [{"highway": "motorway"}])
    assert value(ways, 0, "one_way_car") is None
    assert value(ways, 0, "ft_seg_stress") == 3 and value(ways, 0, "tf_seg_stress") == 3


# --------------------------------------------------------------------------- §3.2 width_ft
WIDTHS = [
    ("12 ft", pg_int(12.0)),                  # step 1: feet
    ("10'6\"", pg_int(10 + 6 / 12)),          # step 2: 10.5 -> 10 (ties to even)
    ("8'", 8),                                # step 2 without inches
    ("2 m", pg_int(M * 2)),                   # step 3: metres
    ("3.75", pg_int(M * 3.75)),               # step 4: unitless = metres
    ("3,5", pg_int(M * 3)),                   # first number is 3
    ("4m", pg_int(M * 4)),                    # unrecognised form -> unitless rule
    ("7", pg_int(M * 7)),                     # 22.97 -> 23 (worked example 14.2)
    ("25", None),                             # unitless >= 20: NULL
    ("wide", None),                           # no digits
]


@pytest.fixture(scope="module")
def width_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("width"),
                    [{"highway": "residential", "width": w} for w, _ in WIDTHS])


@pytest.mark.parametrize("i", range(len(WIDTHS)), ids=[w for w, _ in WIDTHS])
def test_width_ft(width_ways, i):
    assert value(width_ways, i, "width_ft") == WIDTHS[i][1]


# --------------------------------------------------------------------------- §3.3 class
CLASSES = [
    ({"highway": "residential"}, "residential", None),
    ({"highway": "primary_link"}, "primary_link", None),
    ({"highway": "living_street"}, "living_street", None),
    ({"highway": "residential", "access": "destination"}, "residential", None),
    ({"highway": "residential", "access": "no"}, "deleted", None),
    ({"highway": "residential", "access": "private"}, "deleted", None),
    ({"highway": "residential", "access": "private", "bicycle": "yes"}, "deleted", None),
    ({"highway": "residential", "access": "no", "bicycle": "yes"}, "residential", None),
    ({"highway": "residential", "access": "no", "bicycle": "designated"}, "residential", None),
    ({"highway": "track", "tracktype": "grade1"}, "track", None),
    ({"highway": "track", "tracktype": "grade2"}, "deleted", None),
    ({"highway": "track"}, "deleted", None),
    ({"highway": "cycleway"}, "path", None),
    ({"highway": "path"}, "path", None),
    ({"highway": "path", "bicycle": "no"}, "deleted", None),       # §2.4.4
    ({"highway": "cycleway", "bicycle": "no"}, "path", None),      # only highway=path removed
    ({"highway": "footway", "footway": "crossing"}, "path", 1),
    ({"highway": "footway", "footway": "traffic_island"}, "path", 1),
    ({"highway": "footway", "footway": "crossing", "access": "private"}, "deleted", None),
    ({"highway": "footway", "bicycle": "designated"}, "path", None),
    ({"highway": "footway", "bicycle": "yes", "width": "3"}, "path", None),  # 9.8 ft >= 8
    ({"highway": "footway", "bicycle": "yes", "width": "2"}, "deleted", None),  # 6.6 ft
    ({"highway": "footway", "bicycle": "yes", "width": "2.4"}, "path", None),  # 7.87 -> 8 ft
    ({"highway": "footway", "bicycle": "yes"}, "deleted", None),   # NULL width counts as 0
    ({"highway": "footway"}, "deleted", None),
    ({"highway": "service", "bicycle": "yes"}, "unclassified", None),
    ({"highway": "service", "bicycle": "permissive"}, "unclassified", None),
    ({"highway": "service"}, "deleted", None),
    ({"highway": "path", "golf": "cartpath"}, "unclassified", None),
    ({"highway": "path", "golf": "path"}, "unclassified", None),
    ({"highway": "path", "golf_cart": "designated"}, "unclassified", None),
    ({"highway": "pedestrian", "bicycle": "yes"}, "living_street", None),
    ({"highway": "pedestrian"}, "deleted", None),
    ({"highway": "steps"}, "deleted", None),
    ({"highway": "bridleway"}, "deleted", None),
    ({"highway": "construction"}, "deleted", None),
]


@pytest.fixture(scope="module")
def class_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("class"), [t for t, _, _ in CLASSES])


@pytest.mark.parametrize("i", range(len(CLASSES)), ids=[str(t) for t, _, _ in CLASSES])
def test_functional_class(class_ways, i):
    tags, expected, xwalk = CLASSES[i]
    got = value(class_ways, i, "functional_class")
    assert got == expected
    if expected != "deleted":
        assert value(class_ways, i, "xwalk") == xwalk


def test_orphan_removal(tmp_path):
    """§3.3: w1 (path) a-b and w2 (path) b-c keep each other although w3 (footway) c-d is
    deleted; the isolated path w4 e-f is an orphan and deleted; unused vertices go too."""
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (50, 0), 3: (100, 0), 4: (150, 0),
                                    5: (0, 300), 6: (50, 300)})
    ways = {1: ([1, 2], {"highway": "path"}), 2: ([2, 3], {"highway": "path"}),
            3: ([3, 4], {"highway": "footway"}), 4: ([5, 6], {"highway": "path"})}
    s = run_to_stress(tmp_path, nodes, ways)
    assert sorted(s.ways["osm_id"].astype(int)) == [1, 2]
    # intersections not used by a remaining segment are removed (§3.3 step 3)
    assert sorted(s.intersections["osm_id"].astype(int)) == [1, 2, 3]


def test_orphan_passes_agree(tmp_path):
    """B22 switch: orphans have no neighbour, so deleting them isolates nothing new - one pass
    and repeated passes give the same network."""
    from pna_engine.params import Quirks

    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (50, 0), 3: (100, 0), 4: (150, 0)})
    ways = {1: ([1, 2], {"highway": "path"}), 2: ([2, 3], {"highway": "footway"}),
            3: ([3, 4], {"highway": "path"})}
    a = run_to_stress(tmp_path / "a", nodes, ways, quirks=Quirks(single_pass_orphans=True))
    b = run_to_stress(tmp_path / "b", nodes, ways, quirks=Quirks(single_pass_orphans=False))
    assert len(a.ways) == len(b.ways) == 0


# --------------------------------------------------------------------------- §3.4 paths
def test_path_clusters(tmp_path):
    """Two touching path segments form one cluster; a separate one another; lengths rounded."""
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (100.4, 0), 3: (100.4, 60.3),
                                    4: (0, 500), 5: (0, 640), 6: (80, 640)})
    ways = {1: ([1, 2], {"highway": "cycleway"}), 2: ([2, 3], {"highway": "path"}),
            3: ([4, 5], {"highway": "cycleway"}), 4: ([5, 6], {"highway": "residential"})}
    s = run_to_stress(tmp_path, nodes, ways)
    w = s.ways.set_index(s.ways["osm_id"].astype(int))
    assert w.loc[1, "path_id"] == w.loc[2, "path_id"] != w.loc[3, "path_id"]
    assert pd.isna(w.loc[4, "path_id"])
    paths = s.paths.set_index(s.paths["path_id"].astype(int))
    p = paths.loc[int(w.loc[1, "path_id"])]
    length = float(s.ways.geometry[s.ways["osm_id"].isin([1, 2])].length.sum())
    assert p["path_length"] == pg_int(length)
    minx, miny, maxx, maxy = s.ways.geometry[s.ways["osm_id"].isin([1, 2])].total_bounds
    assert p["bbox_length"] == pg_int(math.hypot(maxx - minx, maxy - miny))
    road_ids = sorted(int(r) for r in s.ways.loc[s.ways["osm_id"].isin([1, 2]), "road_id"])
    assert sorted(p["road_ids"]) == road_ids


# --------------------------------------------------------------------------- §3.5 speed
SPEEDS = [(str(k), kmh_to_mph(k)) for k in (20, 30, 40, 50, 60, 70, 80, 90, 100, 110)] + [
    ("35 mph", 35), ("50 kmph", kmh_to_mph(50)), ("50.5", kmh_to_mph(50)), ("50 km/h", None),
    ("30mph", None), ("RU:urban", None), ("signals", None), ("none", None), ("50;30", None),
]


@pytest.fixture(scope="module")
def speed_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("speed"),
                    [{"highway": "primary", "maxspeed": m} for m, _ in SPEEDS])


@pytest.mark.parametrize("i", range(len(SPEEDS)), ids=[m for m, _ in SPEEDS])
def test_speed_limit(speed_ways, i):
    assert value(speed_ways, i, "speed_limit") == SPEEDS[i][1]


def test_speed_examples_from_spec():
    assert [kmh_to_mph(k) for k in (20, 30, 40, 50, 60, 70, 80, 90, 100, 110)] == \
        [10, 20, 25, 30, 35, 45, 50, 55, 60, 70]


# --------------------------------------------------------------------------- §3.6 lanes
LANES = [  # tags, ft_lanes, tf_lanes, ft_cross, tf_cross, twltl
    ({"lanes": "4"}, 2, 2, 2, 2, None),
    ({"lanes": "3"}, 2, 2, 2, 2, None),                       # ceil(3/2)
    ({"lanes": "2", "oneway": "no"}, 1, 1, 1, 1, None),
    ({"lanes": "2", "oneway": "yes"}, 2, None, 2, None, None),
    ({"lanes": "2", "oneway": "1"}, 2, None, 2, None, None),
    ({"lanes": "2", "oneway": "-1"}, None, 2, None, 2, None),
    ({"lanes": "2", "oneway": "true"}, None, None, None, None, None),
    ({"lanes": "2", "oneway": " yes"}, None, None, None, None, None),  # raw value, untrimmed
    ({"lanes:forward": "2", "lanes:backward": "1"}, 2, 1, 2, 1, None),
    ({"turn:lanes:forward": "left|through|right", "lanes": "4"}, 3, 2, 2, 2, None),
    ({"turn:lanes:backward": "right", "lanes": "2"}, 1, 1, 1, None, None),
    ({"turn:lanes": "left|right", "oneway": "yes"}, 2, None, 1, None, None),
    ({"turn:lanes": "left|right", "oneway": "-1"}, None, 2, None, 1, None),
    ({"turn:lanes": "left|right"}, None, None, None, None, None),
    ({"lanes": "3", "lanes:both_ways": "1"}, 2, 2, 2, 2, 1),
    ({"turn:lanes:both_ways": "left"}, None, None, None, None, 1),
]


@pytest.fixture(scope="module")
def lane_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("lanes"),
                    [{"highway": "primary", **t} for t, *_ in LANES])


@pytest.mark.parametrize("i", range(len(LANES)), ids=[str(c[0]) for c in LANES])
def test_lanes(lane_ways, i):
    _, ft, tf, ftc, tfc, tw = LANES[i]
    got = [value(lane_ways, i, c) for c in ("ft_lanes", "tf_lanes", "ft_cross_lanes",
                                            "tf_cross_lanes", "twltl_cross_lanes")]
    assert got == [ft, tf, ftc, tfc, tw]


# --------------------------------------------------------------------------- §3.7 parking
PARKING = [
    ({"parking:lane:right": "parallel"}, 1, None),
    ({"parking:lane:right": "paralell"}, 1, None),
    ({"parking:lane:left": "diagonal"}, None, 1),
    ({"parking:lane:left": "perpendicular", "parking:lane:right": "no_parking"}, 0, 1),
    ({"parking:lane:right": "no_stopping"}, 0, None),
    ({"parking:right": "lane"}, 1, None),
    ({"parking:left": "no"}, None, 0),
    ({"parking:right:restriction": "no_parking"}, 0, None),
    ({"parking:left:restriction": "no_stopping"}, None, 0),
    ({"parking:lane:right": "parallel", "parking:right": "no"}, 1, None),  # first match
    ({"parking:lane:both": "parallel"}, None, None),                       # B2
    ({"parking:both": "lane"}, None, None),                                # B2
]


@pytest.fixture(scope="module")
def park_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("park"),
                    [{"highway": "primary", **t} for t, *_ in PARKING])


@pytest.mark.parametrize("i", range(len(PARKING)), ids=[str(c[0]) for c in PARKING])
def test_parking(park_ways, i):
    _, ft, tf = PARKING[i]
    assert [value(park_ways, i, "ft_park"), value(park_ways, i, "tf_park")] == [ft, tf]


def test_parking_both_counts_when_quirk_off(tmp_path):
    from pna_engine.params import Quirks

    ways = star_run(tmp_path, [{"highway": "primary", "parking:lane:both": "parallel"}],
                    quirks=Quirks(parking_both_ignored=False))
    assert [value(ways, 0, "ft_park"), value(ways, 0, "tf_park")] == [1, 1]


# --------------------------------------------------------------------------- §3.8 bike infra
B, L, T, S = "buffered_lane", "lane", "track", "sharrow"
INFRA = [  # tags (on highway=primary), ft infra, tf infra, one_way
    # head H1-H9
    ({"cycleway:both": "shared_lane"}, S, S, None),
    ({"cycleway:both": "buffered_lane"}, B, B, None),
    ({"cycleway:both": "lane", "cycleway:buffer": "yes"}, B, B, None),
    ({"cycleway:both": "lane", "cycleway:both:buffer": "left"}, B, B, None),
    ({"cycleway:both": "lane"}, L, L, None),
    ({"cycleway:both": "track"}, T, T, None),
    ({"cycleway:right": "track", "oneway:bicycle": "no"}, T, T, None),
    ({"cycleway:right": "track", "cycleway:right:oneway": "no", "oneway": "yes"}, T, T, None),
    ({"cycleway:left": "track", "cycleway:left:oneway": "no"}, T, T, None),
    ({"cycleway": "track", "oneway:bicycle": "no", "oneway": "yes"}, T, T, None),
    # two-way W1-W11 (ft: right side; tf: left side)
    ({"cycleway": "shared_lane"}, S, S, None),
    ({"cycleway:right": "shared_lane"}, S, None, None),
    ({"cycleway:left": "shared_lane"}, None, S, None),
    ({"cycleway": "buffered_lane"}, B, B, None),
    ({"cycleway:right": "buffered_lane"}, B, None, None),
    ({"cycleway": "lane", "cycleway:buffer": "both"}, B, B, None),
    ({"cycleway:right": "lane", "cycleway:buffer": "yes"}, B, None, None),
    ({"cycleway:right": "lane", "cycleway:right:buffer": "yes"}, B, None, None),
    ({"cycleway:left": "lane", "cycleway:left:buffer": "right"}, None, B, None),
    ({"cycleway": "lane"}, L, L, None),
    ({"cycleway:right": "lane"}, L, None, None),
    ({"cycleway:left": "lane"}, None, L, None),
    ({"cycleway": "track"}, T, T, None),
    ({"cycleway:right": "track"}, T, None, None),
    ({"cycleway:left": "track"}, None, T, None),
    ({"cycleway": "opposite_lane"}, None, None, None),        # no contraflow on two-way roads
    # one_way_car = ft: with traffic F1-F16 for ft, contraflow T1-T14 for tf
    ({"oneway": "yes", "cycleway:left": "shared_lane"}, S, None, "ft"),
    ({"oneway": "yes", "cycleway:left": "lane", "cycleway:buffer": "yes"}, B, None, "ft"),
    ({"oneway": "yes", "cycleway:left": "lane", "cycleway:left:buffer": "yes"}, B, None, "ft"),
    ({"oneway": "yes", "cycleway:left": "lane"}, L, None, "ft"),
    ({"oneway": "yes", "cycleway:left": "track"}, T, None, "ft"),
    ({"oneway": "yes", "cycleway": "shared_lane"}, S, None, "ft"),
    ({"oneway": "yes", "cycleway:right": "shared_lane"}, S, None, "ft"),
    ({"oneway": "yes", "cycleway": "buffered_lane"}, B, None, "ft"),
    ({"oneway": "yes", "cycleway:right": "buffered_lane"}, B, None, "ft"),
    ({"oneway": "yes", "cycleway:right": "buffered_lane", "cycleway:right:oneway": "-1"},
     None, None, "ft"),
    ({"oneway": "yes", "cycleway": "lane", "cycleway:buffer": "yes"}, B, None, "ft"),
    ({"oneway": "yes", "cycleway:right": "lane", "cycleway:right:buffer": "both"}, B, None, "ft"),
    ({"oneway": "yes", "cycleway": "lane"}, L, None, "ft"),
    ({"oneway": "yes", "cycleway:right": "lane"}, L, None, "ft"),
    ({"oneway": "yes", "cycleway": "track"}, T, None, "ft"),
    ({"oneway": "yes", "cycleway:right": "track"}, T, None, "ft"),
    # contraflow for tf on one_way_car=ft
    ({"oneway": "yes", "cycleway": "opposite_lane", "cycleway:buffer": "yes"}, None, B, None),
    ({"oneway": "yes", "cycleway:right": "opposite_lane", "cycleway:buffer": "yes"}, None, B, None),
    ({"oneway": "yes", "cycleway:right": "opposite_lane", "cycleway:right:buffer": "yes"},
     None, B, None),
    ({"oneway": "yes", "cycleway:left": "track", "cycleway:left:oneway": "-1"}, None, T, None),
    ({"oneway": "yes", "cycleway:right": "track", "cycleway:right:oneway": "-1"}, None, T, None),
    ({"oneway": "yes", "cycleway:left": "lane", "cycleway:left:oneway": "-1",
      "cycleway:left:buffer": "yes"}, None, B, None),
    ({"oneway": "yes", "cycleway:right": "lane", "cycleway:right:oneway": "-1",
      "cycleway:right:buffer": "yes"}, None, B, None),
    ({"oneway": "yes", "cycleway:left": "lane", "cycleway:left:oneway": "-1"}, None, L, None),
    ({"oneway": "yes", "cycleway:right": "lane", "cycleway:right:oneway": "-1"}, None, L, None),
    ({"oneway": "yes", "cycleway": "opposite_lane"}, None, L, None),
    ({"oneway": "yes", "cycleway:right": "opposite_lane"}, None, L, None),
    ({"oneway": "yes", "cycleway": "opposite_track"}, None, T, None),
    ({"oneway": "yes", "cycleway:left": "opposite_track"}, None, None, "ft"),   # B4
    ({"oneway": "yes", "cycleway:right": "opposite_track"}, None, None, "ft"),  # B4
    ({"oneway": "yes", "oneway:bicycle": "no"}, None, None, None),
    # one_way_car = tf: with traffic for tf (right side first), contraflow for ft
    ({"oneway": "-1", "cycleway:right": "shared_lane"}, None, S, "tf"),
    ({"oneway": "-1", "cycleway:right": "lane", "cycleway:buffer": "yes"}, None, B, "tf"),
    ({"oneway": "-1", "cycleway:right": "lane", "cycleway:right:buffer": "yes"}, None, B, "tf"),
    ({"oneway": "-1", "cycleway:right": "lane"}, None, L, "tf"),
    ({"oneway": "-1", "cycleway:right": "track"}, None, T, "tf"),
    ({"oneway": "-1", "cycleway:left": "shared_lane"}, None, S, "tf"),
    ({"oneway": "-1", "cycleway:left": "buffered_lane", "cycleway:left:oneway": "-1"},
     None, B, "tf"),                                                   # F9: no CLO condition
    ({"oneway": "-1", "cycleway": "lane", "cycleway:buffer": "yes",
      "cycleway:left:oneway": "-1"}, None, L, "tf"),                   # F10 needs CLO != -1
    ({"oneway": "-1", "cycleway:left": "lane", "cycleway:left:buffer": "yes"}, None, B, "tf"),
    ({"oneway": "-1", "cycleway:left": "lane"}, None, L, "tf"),
    ({"oneway": "-1", "cycleway:left": "track"}, None, T, "tf"),
    ({"oneway": "-1", "cycleway:left": "track", "cycleway:left:oneway": "-1"}, T, None, None),  # B5
    ({"oneway": "-1", "cycleway:left": "opposite_track"}, T, None, None),   # T13 fires here
    ({"oneway": "-1", "cycleway:right": "opposite_track"}, T, None, None),  # T14
    ({"oneway": "-1", "cycleway": "opposite_lane"}, L, None, None),
]


@pytest.fixture(scope="module")
def infra_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("infra"),
                    [{"highway": "primary", **t} for t, *_ in INFRA])


@pytest.mark.parametrize("i", range(len(INFRA)), ids=[str(c[0]) for c in INFRA])
def test_bike_infra(infra_ways, i):
    _, ft, tf, ow = INFRA[i]
    got = [value(infra_ways, i, c) for c in ("ft_bike_infra", "tf_bike_infra", "one_way")]
    assert got == [ft, tf, ow]


def test_b4_b5_switches(tmp_path):
    from pna_engine.params import Quirks

    cases = [{"highway": "primary", "oneway": "yes", "cycleway:left": "opposite_track"},
             {"highway": "primary", "oneway": "-1", "cycleway:left": "track",
              "cycleway:left:oneway": "-1"}]
    ways = star_run(tmp_path, cases, quirks=Quirks(opposite_track_tf_ignored=False,
                                                  contraflow_oneway_minus_one=False))
    assert value(ways, 0, "tf_bike_infra") == "track"  # B4 off: opposite_track counts
    assert value(ways, 1, "ft_bike_infra") is None     # B5 off: -1 is not contraflow


WIDTH_CASES = [  # tags (with infra), ft width, tf width
    ({"cycleway": "lane", "cycleway:right:width": "5 ft"}, 5.0, None),
    ({"cycleway": "lane", "cycleway:left:width": "2 m"}, None, M * 2),
    ({"cycleway": "lane", "cycleway:both:width": "1.5"}, M * 1.5, M * 1.5),
    ({"cycleway": "lane", "cycleway:width": "4 ft", "cycleway:both:width": "1 m"}, 4.0, 4.0),
    ({"cycleway": "lane", "cycleway:both:width": "wide", "cycleway:width": "1.5"}, None, None),
    ({"cycleway": "lane", "cycleway:both:width": "wide", "cycleway:width": "2 m"}, M * 2, M * 2),
    ({"oneway": "yes", "cycleway:right": "lane", "cycleway:left:width": "3 ft"}, 3.0, None),
    ({"cycleway:right": "lane", "cycleway:left:width": "3 ft"}, None, None),
    ({"cycleway:width": "2"}, None, None),                       # no infra: no width
]


@pytest.fixture(scope="module")
def infra_width_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("infraw"),
                    [{"highway": "primary", **t} for t, *_ in WIDTH_CASES])


@pytest.mark.parametrize("i", range(len(WIDTH_CASES)), ids=[str(c[0]) for c in WIDTH_CASES])
def test_bike_infra_width(infra_width_ways, i):
    _, ft, tf = WIDTH_CASES[i]
    for col, exp in (("ft_bike_infra_width", ft), ("tf_bike_infra_width", tf)):
        got = value(infra_width_ways, i, col)
        assert (got is None) if exp is None else got == pytest.approx(exp), col


# --------------------------------------------------------------------------- §3.9 adjustment
ADJUST = [
    ({"highway": "residential", "cycleway": "lane"}, "tertiary"),
    ({"highway": "residential", "cycleway": "track"}, "tertiary"),
    ({"highway": "residential", "cycleway:right": "lane"}, "residential"),  # bsa: both needed
    ({"highway": "residential", "cycleway": "shared_lane"}, "residential"),
    ({"highway": "unclassified", "lanes": "4"}, "tertiary"),
    ({"highway": "unclassified", "lanes": "2", "oneway": "yes"}, "tertiary"),
    ({"highway": "unclassified", "lanes": "2"}, "unclassified"),
    ({"highway": "residential", "maxspeed": "30 mph"}, "tertiary"),
    ({"highway": "residential", "maxspeed": "50"}, "tertiary"),   # 50 km/h -> 30 mph
    ({"highway": "residential", "maxspeed": "40"}, "residential"),  # -> 25 mph
    ({"highway": "service", "bicycle": "yes", "maxspeed": "30 mph"}, "tertiary"),
    ({"highway": "living_street", "maxspeed": "30 mph"}, "living_street"),
]


@pytest.fixture(scope="module")
def adjust_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("adjust"), [t for t, _ in ADJUST])


@pytest.mark.parametrize("i", range(len(ADJUST)), ids=[str(c[0]) for c in ADJUST])
def test_class_adjustment(adjust_ways, i):
    assert value(adjust_ways, i, "functional_class") == ADJUST[i][1]


# --------------------------------------------------------------------------- §3.10 ints
def cross_junction(node_tags: dict[int, dict[str, str]] | None = None,
                   extra_nodes: dict[int, tuple] | None = None,
                   way_tags: dict[str, str] | None = None) -> tuple[dict, dict]:
    """A four-leg junction at node 1 (0, 0): residential west-east through it, primary
    north-south through it. Extra nodes are given in metres."""
    spec = {1: (0, 0), 2: (-100, 0), 3: (100, 0), 4: (0, -100), 5: (0, 100)}
    for nid, tags in (node_tags or {}).items():
        spec[nid] = (*spec[nid][:2], tags)
    spec.update(extra_nodes or {})
    nodes = grid_nodes(LON0, LAT0, spec)
    ways = {1: ([2, 1, 3], {"highway": "residential", "name": "Oak St"}),
            2: ([4, 1, 5], {"highway": "primary", "name": "Main St", **(way_tags or {})})}
    return nodes, ways


def junction(s) -> Any:
    ints = s.intersections.set_index(s.intersections["osm_id"].astype(int))
    return ints.loc[1]


INTS = [  # description, node tags at 1, extra nodes, expected (signalized, stops, rrfb, island)
    ("plain", {}, {}, (False, False, False, False)),
    ("signal node", {1: {"highway": "traffic_signals"}}, {}, (True, False, False, False)),
    ("crossing signals 20 m", {}, {9: (20, 0, {"highway": "crossing",
                                               "crossing": "traffic_signals"})},
     (True, False, False, False)),
    ("crossing signals 30 m", {}, {9: (30, 0, {"highway": "crossing",
                                               "crossing": "traffic_signals"})},
     (False, False, False, False)),
    ("toucan 10 m", {}, {9: (10, 0, {"highway": "crossing", "crossing": "toucan"})},
     (True, False, False, False)),
    ("pelican via crossing_ref is ignored", {}, {9: (10, 0, {"highway": "crossing",
                                                             "crossing_ref": "pelican"})},
     (False, False, False, False)),
    ("all-way stop", {1: {"highway": "stop", "stop": "all"}}, {}, (False, True, False, False)),
    ("stop not all-way", {1: {"highway": "stop"}}, {}, (False, False, False, False)),
    ("rrfb", {}, {9: (10, 0, {"highway": "crossing", "flashing_lights": "button"})},
     (False, False, True, False)),
    ("island", {}, {9: (10, 0, {"highway": "crossing", "crossing": "island"})},
     (False, False, False, True)),
    ("crossing:island", {}, {9: (10, 0, {"highway": "crossing", "crossing:island": "yes"})},
     (False, False, False, True)),
    ("island node not a crossing", {}, {9: (10, 0, {"crossing": "island"})},
     (False, False, False, False)),
]


@pytest.mark.parametrize("case", INTS, ids=[c[0] for c in INTS])
def test_intersection_flags(tmp_path, case):
    _, node_tags, extra, expected = case
    nodes, ways = cross_junction(node_tags, extra)
    s = run_to_stress(tmp_path, nodes, ways)
    j = junction(s)
    assert int(j["legs"]) == 4
    assert (bool(j["signalized"]), bool(j["stops"]), bool(j["rrfb"]), bool(j["island"])) == expected


def test_signal_direction_tags(tmp_path):
    """Rule 2: traffic_signals:direction=forward marks the intersection_to of every segment
    of that way; backward the intersection_from."""
    nodes, ways = cross_junction(way_tags={"traffic_signals:direction": "forward"})
    s = run_to_stress(tmp_path, nodes, ways)
    ints = s.intersections.set_index(s.intersections["osm_id"].astype(int))
    assert bool(ints.loc[1, "signalized"]) and bool(ints.loc[5, "signalized"])
    assert not bool(ints.loc[4, "signalized"])
    nodes, ways = cross_junction(way_tags={"traffic_signals:direction": "backward"})
    s = run_to_stress(tmp_path / "b", nodes, ways)
    ints = s.intersections.set_index(s.intersections["osm_id"].astype(int))
    assert bool(ints.loc[1, "signalized"]) and bool(ints.loc[4, "signalized"])
    assert not bool(ints.loc[5, "signalized"])


def test_signal_propagation_one_pass(tmp_path):
    """Rule 5: an intersection with > 2 legs within 25 m of a signalized one is signalized;
    a 2-leg one is not; and the propagation is a single pass."""
    spec = {1: (0, 0, {"highway": "traffic_signals"}), 2: (-100, 0), 3: (15, 0), 4: (100, 0),
            5: (0, -100), 6: (0, 100), 7: (15, -100), 8: (15, 100), 9: (35, 0), 10: (35, -100),
            11: (35, 100)}
    nodes = grid_nodes(LON0, LAT0, spec)
    ways = {1: ([2, 1, 3, 9, 4], {"highway": "residential"}),
            2: ([5, 1, 6], {"highway": "primary"}),
            3: ([7, 3, 8], {"highway": "secondary"}),
            4: ([10, 9, 11], {"highway": "secondary"})}
    s = run_to_stress(tmp_path, nodes, ways)
    ints = s.intersections.set_index(s.intersections["osm_id"].astype(int))
    assert bool(ints.loc[1, "signalized"])
    assert bool(ints.loc[3, "signalized"])       # 15 m from node 1, 4 legs
    assert not bool(ints.loc[9, "signalized"])   # 20 m from 3 but 35 m from 1: single pass
    assert not bool(ints.loc[2, "signalized"])   # 1 leg


def test_legs_counts_loop_once(tmp_path):
    """legs = segments having the intersection as an end; a loop segment counts once."""
    spec = {1: (0, 0), 2: (100, 0), 3: (100, 100), 4: (-100, 0)}
    nodes = grid_nodes(LON0, LAT0, spec)
    ways = {1: ([1, 2, 3, 1], {"highway": "residential"}),
            2: ([4, 1], {"highway": "residential"})}
    s = run_to_stress(tmp_path, nodes, ways)
    ints = s.intersections.set_index(s.intersections["osm_id"].astype(int))
    assert int(ints.loc[1, "legs"]) == 2


# --------------------------------------------------------------------------- columns, dtypes
def test_ways_columns_and_dtypes(class_ways):
    from pna_engine.features import WAYS_COLUMNS

    for col in WAYS_COLUMNS:
        assert col in class_ways.columns, col
    for col in ("road_id", "osm_id", "intersection_from", "intersection_to", "path_id",
                "speed_limit", "width_ft", "ft_lanes", "tf_lanes", "ft_park", "tf_park",
                "ft_seg_stress", "ft_int_stress", "tf_seg_stress", "tf_int_stress", "xwalk"):
        assert str(class_ways[col].dtype) == "Int64", col
    import uuid

    for v in class_ways["tdg_id"]:
        assert uuid.UUID(v).version == 4


def test_buffer_clip(tmp_path):
    """§2.4.4: a segment farther than the boundary buffer (2680 m) from the boundary is
    deleted; one starting within it is kept (boundary: 600 m square, east edge at 300 m).
    Every way has a node inside, so the polygon clip keeps them whole."""
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (1000, 0), 3: (3100, 0), 4: (3500, 0),
                                    5: (3100, 300), 6: (0, 100),
                                    7: (3500, 200, {"amenity": "pharmacy"})})
    ways = {1: ([1, 2, 3, 4], {"highway": "residential"}),
            2: ([6, 3, 5], {"highway": "residential"}),
            3: ([1, 4], {"highway": "footway"}),
            4: ([6, 7], {"highway": "footway"})}
    s = run_to_stress(tmp_path, nodes, ways, boundary_half_m=300)
    w = s.ways
    east = s.boundary.geometry.iloc[0].bounds[2]
    ends = sorted(round((g.bounds[2] - east) / 10) * 10 for g in w.geometry)
    # kept: 1-2-3 and 6-3 (both reach x = 3100, 2800 m east of the boundary); deleted:
    # 3-4 and 3-5 (2800 m away at their nearest point > 2680 m)
    assert ends == [2800, 2800]
    assert 7 not in set(s.osm.points["osm_id"].astype(int))  # 3200 m away: deleted
    assert 6 in set(s.intersections["osm_id"].astype(int))
