"""Segment stress (BNA-METHOD §4, bsa) and crossing stress (§5), with the worked examples of
§14.1-14.6. Small OSM files go through import -> features -> stress; expected values are
read off the spec tables."""

from __future__ import annotations

from typing import Any

import pytest
from osmfactory import LAT0, LON0, grid_nodes, run_to_stress
from test_engine_features import star_run, value

# --------------------------------------------------------------------------- §4.1-4.2
HIGHER = [  # tags, ft_seg_stress, tf_seg_stress   (why, from the §4.2 table)
    ({"highway": "motorway"}, 3, 3),
    ({"highway": "trunk_link"}, 3, 3),
    ({"highway": "primary"}, 3, 3),                                       # S 40 default
    ({"highway": "secondary_link"}, 3, 3),
    ({"highway": "tertiary"}, 3, 3),                                      # S 30 > 15
    ({"highway": "tertiary", "maxspeed": "15 mph"}, 1, 1),                # S 15, L 1
    ({"highway": "tertiary", "maxspeed": "15 mph", "lanes": "4"}, 3, 3),  # L 2
    ({"highway": "secondary", "maxspeed": "15 mph"}, 3, 3),               # default L 2
    ({"highway": "tertiary", "maxspeed": "15 mph", "cycleway": "shared_lane"}, 1, 1),
    ({"highway": "tertiary", "maxspeed": "20 mph", "cycleway": "shared_lane"}, 3, 3),
    ({"highway": "primary", "cycleway": "track"}, 1, 1),                  # track: 1
    ({"highway": "primary", "cycleway:right": "track"}, 1, 3),
    ({"highway": "primary", "cycleway": "buffered_lane", "maxspeed": "25 mph", "lanes": "2"}, 1, 1),
    ({"highway": "primary", "cycleway": "buffered_lane", "maxspeed": "30 mph", "lanes": "2"}, 3, 3),
    ({"highway": "primary", "cycleway": "buffered_lane", "maxspeed": "25 mph", "lanes": "4"}, 3, 3),
    ({"highway": "primary", "cycleway": "buffered_lane", "maxspeed": "25 mph"}, 3, 3),  # L 2
    ({"highway": "tertiary", "cycleway": "buffered_lane", "maxspeed": "25 mph"}, 1, 1),
    ({"highway": "tertiary", "cycleway": "lane", "maxspeed": "20 mph"}, 1, 1),  # W 5 >= 4
    ({"highway": "tertiary", "cycleway": "lane", "maxspeed": "20 mph",
      "cycleway:width": "1"}, 3, 3),                                      # W 3.28 < 4
    ({"highway": "tertiary", "cycleway": "lane", "maxspeed": "20 mph",
      "cycleway:width": "4 ft"}, 1, 1),
    ({"highway": "tertiary", "cycleway": "lane", "maxspeed": "25 mph"}, 3, 3),
    ({"highway": "tertiary", "cycleway": "lane", "maxspeed": "20 mph", "lanes": "4"}, 3, 3),
    ({"highway": "primary_link", "cycleway": "lane", "maxspeed": "20 mph", "lanes": "2"}, 1, 1),
    # §14.1: tertiary 35 mph, 2 lanes, painted lanes both sides
    ({"highway": "tertiary", "maxspeed": "35 mph", "lanes": "2", "cycleway": "lane"}, 3, 3),
    # §4.5 unclassified (default 25) and service with bicycle permission
    ({"highway": "unclassified"}, 1, 1),
    ({"highway": "unclassified", "maxspeed": "40"}, 1, 1),                # 40 km/h -> 25
    ({"highway": "unclassified", "maxspeed": "26 mph"}, 3, 3),
    ({"highway": "service", "bicycle": "yes"}, 1, 1),
    # §4.6
    ({"highway": "living_street"}, 1, 1),
    ({"highway": "living_street", "bicycle": "no"}, 3, 3),
    ({"highway": "pedestrian", "bicycle": "yes"}, 1, 1),
    ({"highway": "track", "tracktype": "grade1"}, 1, 1),
    ({"highway": "cycleway"}, 1, 1),
    ({"highway": "footway", "footway": "crossing"}, 1, 1),
    # §4.7 one-way reset (bicycle one_way)
    ({"highway": "residential", "oneway": "yes", "maxspeed": "20 mph"}, 1, None),
    ({"highway": "residential", "oneway": "-1", "maxspeed": "20 mph"}, None, 1),
    ({"highway": "residential", "oneway": "yes", "oneway:bicycle": "no",
      "maxspeed": "20 mph"}, 1, 1),
    ({"highway": "primary", "oneway": "yes", "cycleway": "opposite_lane"}, 3, 3),
]


@pytest.fixture(scope="module")
def higher_ways(tmp_path_factory):
    return star_run(tmp_path_factory.mktemp("stress"), [t for t, _, _ in HIGHER])


@pytest.mark.parametrize("i", range(len(HIGHER)), ids=[str(c[0]) for c in HIGHER])
def test_segment_stress(higher_ways, i):
    _, ft, tf = HIGHER[i]
    assert [value(higher_ways, i, "ft_seg_stress"), value(higher_ways, i, "tf_seg_stress")] == \
        [ft, tf]


# --------------------------------------------------------------------------- §4.4 residential
RESIDENTIAL = [  # tags, params, expected stress    (S = tag ?? city ?? state; NULL -> 3)
    ({}, {"country": "united states", "state_speed_limit": 25}, 1),     # §14.2 (state 25)
    ({}, {"country": "united states", "city_speed_limit": 25}, 1),      # §14.2 city 25
    ({"width": "7"}, {"country": "united states", "city_speed_limit": 25}, 1),  # §14.2 width
    ({}, {"country": "united states", "state_speed_limit": 30, "city_speed_limit": 25}, 1),
    ({}, {"country": "united states", "state_speed_limit": 25, "city_speed_limit": 30}, 3),
    ({}, {"country": "united states"}, 3),                              # no default: NULL -> 3
    ({}, {"country": "finland"}, 3),                                    # non-US 30 mph
    ({}, {"country": "finland", "city_speed_limit": 20}, 1),
    ({"maxspeed": "25 mph"}, {"country": "united states"}, 1),
    ({"maxspeed": "20 mph"}, {"country": "united states", "state_speed_limit": 40}, 1),
    ({"maxspeed": "30"}, {"country": "finland"}, 1),                    # §14.4: 30 km/h -> 20
    ({"maxspeed": "50"}, {"country": "finland"}, 3),                    # §14.4: -> tertiary
    ({"cycleway": "lane"}, {"country": "united states", "city_speed_limit": 25}, 3),  # §14.3
]


@pytest.mark.parametrize("case", RESIDENTIAL, ids=[f"{c[0]}-{c[1]}" for c in RESIDENTIAL])
def test_residential_stress(tmp_path, case):
    tags, params, expected = case
    ways = star_run(tmp_path, [{"highway": "residential", **tags}], **params)
    assert value(ways, 0, "ft_seg_stress") == expected
    assert value(ways, 0, "tf_seg_stress") == expected


def test_worked_example_14_3_and_14_4_classes(tmp_path):
    ways = star_run(tmp_path, [{"highway": "residential", "cycleway": "lane"},
                               {"highway": "residential", "maxspeed": "50"},
                               {"highway": "residential", "maxspeed": "30"}])
    assert value(ways, 0, "functional_class") == "tertiary"      # §14.3
    assert value(ways, 1, "speed_limit") == 30                   # round(6.215) * 5
    assert value(ways, 1, "functional_class") == "tertiary"
    assert value(ways, 2, "speed_limit") == 20
    assert value(ways, 2, "functional_class") == "residential"


def test_worked_example_14_2_width(tmp_path):
    ways = star_run(tmp_path, [{"highway": "residential", "width": "7"}],
                    country="united states", city_speed_limit=25)
    assert value(ways, 0, "width_ft") == 23


# --------------------------------------------------------------------------- §5 crossings
def tee(r_tags: dict[str, str], w_tags: dict[str, str] | None,
        node1: dict[str, str] | None = None, extra: dict[int, tuple] | None = None,
        r_reversed: bool = False) -> tuple[dict, dict]:
    """R runs from (-100, 0) to the junction node 1 (0, 0) (ft ends at 1); W runs
    north-south through node 1. ``r_reversed`` digitises R from node 1 outwards (tf ends there).
    A residential 'R2' continues R east (same name as R) so node 1 has 4 legs."""
    spec: dict[int, tuple] = {1: (0, 0, node1 or {}), 2: (-100, 0), 3: (100, 0), 4: (0, -100),
                              5: (0, 100), 6: (-200, 0)}
    spec.update(extra or {})
    nodes = grid_nodes(LON0, LAT0, spec)
    ways: dict[int, Any] = {
        1: ([1, 2] if r_reversed else [2, 1], r_tags),
        3: ([6, 2], {"highway": "residential", "name": r_tags.get("name", "Back Rd")}),
        4: ([1, 3], {**r_tags}),
    }
    if w_tags is not None:
        ways[2] = ([4, 1, 5], w_tags)
    return nodes, ways


def crossing_stress(tmp_path, *args: Any, **kw: Any) -> tuple[Any, Any]:
    params = kw.pop("params", {})
    nodes, ways = tee(*args, **kw)
    s = run_to_stress(tmp_path, nodes, ways, **params)
    w = s.ways.set_index(s.ways["osm_id"].astype(int))
    return w.loc[1, "ft_int_stress"], w.loc[1, "tf_int_stress"]


OAK = {"highway": "residential", "name": "Oak St", "maxspeed": "20 mph"}
MAIN = {"highway": "primary", "name": "Main St"}
CROSSINGS = [  # description, R tags, W tags, node-1 tags, extra nodes, expected ft_int_stress
    ("14.5 primary untagged", OAK, MAIN, None, None, 3),
    ("signal", OAK, MAIN, {"highway": "traffic_signals"}, None, 1),      # §14.6 signal
    ("all-way stop", OAK, MAIN, {"highway": "stop", "stop": "all"}, None, 1),
    ("14.5 30 mph + island", OAK, {**MAIN, "maxspeed": "30 mph"}, None,
     {9: (0, 10, {"highway": "crossing", "crossing": "island"})}, 1),
    ("30 mph no island", OAK, {**MAIN, "maxspeed": "30 mph"}, None, None, 3),
    ("25 mph, T=4", OAK, {**MAIN, "maxspeed": "25 mph"}, None, None, 1),
    ("T=6 > 4", OAK, {**MAIN, "lanes": "6", "maxspeed": "20 mph"}, None, None, 3),
    ("rrfb+island S40 T4", OAK, MAIN, None,
     {9: (0, 10, {"highway": "crossing", "flashing_lights": "yes", "crossing": "island"})}, 1),
    ("rrfb no island S40 T4", OAK, MAIN, None,
     {9: (0, 10, {"highway": "crossing", "flashing_lights": "yes"})}, 3),
    ("rrfb+island S50 T4", OAK, {**MAIN, "maxspeed": "50 mph"}, None,
     {9: (0, 10, {"highway": "crossing", "flashing_lights": "yes", "crossing": "island"})}, 3),
    ("rrfb S30 T4", OAK, {**MAIN, "maxspeed": "30 mph"}, None,
     {9: (0, 10, {"highway": "crossing", "flashing_lights": "yes"})}, 1),
    ("T2 S40 no rrfb no island", OAK, {**MAIN, "lanes": "2"}, None, None, 3),
    ("T2 S40 island", OAK, {**MAIN, "lanes": "2"}, None,
     {9: (0, 10, {"highway": "crossing", "crossing:island": "yes"})}, 1),
    ("T2 S30", OAK, {**MAIN, "lanes": "2", "maxspeed": "30 mph"}, None, None, 1),
    ("T2 S40 rrfb", OAK, {**MAIN, "lanes": "2"}, None,
     {9: (0, 10, {"highway": "crossing", "flashing_lights": "sensor"})}, 3),
    ("T2 S35 rrfb", OAK, {**MAIN, "lanes": "2", "maxspeed": "35 mph"}, None,
     {9: (0, 10, {"highway": "crossing", "flashing_lights": "sensor"})}, 1),
    ("one-way L3", OAK, {**MAIN, "oneway": "yes", "lanes": "3"}, None, None, 3),
    ("one-way default L2 S40", OAK, {**MAIN, "oneway": "yes"}, None, None, 3),
    ("one-way L2 S30", OAK, {**MAIN, "oneway": "yes", "maxspeed": "30 mph"}, None, None, 1),
    ("one-way L2 S40 rrfb", OAK, {**MAIN, "oneway": "yes", "lanes": "2"}, None,
     {9: (0, 10, {"highway": "crossing", "flashing_lights": "always"})}, 1),
    ("one-way L1 S40 rrfb", OAK, {**MAIN, "oneway": "yes", "lanes": "1"}, None,
     {9: (0, 10, {"highway": "crossing", "flashing_lights": "always"})}, 3),
    ("one-way island ignored", OAK, {**MAIN, "oneway": "yes"}, None,
     {9: (0, 10, {"highway": "crossing", "crossing": "island"})}, 3),
    ("secondary", OAK, {**MAIN, "highway": "secondary"}, None, None, 3),
    ("14.5 tertiary untagged", OAK, {**MAIN, "highway": "tertiary"}, None, None, 1),
    ("tertiary 35 mph", OAK, {**MAIN, "highway": "tertiary", "maxspeed": "35 mph"}, None, None, 3),
    ("motorway", OAK, {**MAIN, "highway": "motorway"}, None, None, 3),
    ("trunk", OAK, {**MAIN, "highway": "trunk"}, None, None, 3),
    ("motorway_link", OAK, {**MAIN, "highway": "motorway_link"}, None, None, 1),
    ("primary_link", OAK, {**MAIN, "highway": "primary_link"}, None, None, 1),
    ("same name", OAK, {**MAIN, "name": "Oak St"}, None, None, 1),
    ("unnamed both", {**OAK, "name": None}, {**MAIN, "name": None}, None, None, 3),
    ("B16: unnamed R vs W named a", {**OAK, "name": None}, {**MAIN, "name": "a"}, None, None, 1),
    ("R path", {"highway": "cycleway"}, MAIN, None, None, 3),
    ("R living street", {"highway": "living_street", "name": "Oak St"}, MAIN, None, None, 3),
    ("R tertiary vs primary", {**OAK, "highway": "tertiary"}, MAIN, None, None, 3),
    ("R tertiary vs tertiary", {**OAK, "highway": "tertiary"},
     {**MAIN, "highway": "tertiary", "maxspeed": "35 mph"}, None, None, 1),
    ("R primary", {**OAK, "highway": "primary"}, MAIN, None, None, 1),
    ("R secondary_link", {**OAK, "highway": "secondary_link"}, MAIN, None, None, 1),
    ("R motorway", {**OAK, "highway": "motorway"}, MAIN, None, None, 1),
]


def _clean(tags: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if v is not None}


@pytest.mark.parametrize("case", CROSSINGS, ids=[c[0] for c in CROSSINGS])
def test_crossing_stress(tmp_path, case):
    _, r, w, n1, extra, expected = case
    ft, tf = crossing_stress(tmp_path, _clean(r), _clean(w), n1, extra)
    assert ft == expected
    assert tf == 1  # R's from-end (node 2) meets only its own street


def test_crossing_tf_direction(tmp_path):
    ft, tf = crossing_stress(tmp_path, OAK, MAIN, r_reversed=True)
    assert (ft, tf) == (1, 3)


def test_crossing_name_sentinel_switch(tmp_path):
    from pna_engine.params import Quirks

    ft, _ = crossing_stress(tmp_path, _clean({**OAK, "name": None}), {**MAIN, "name": "a"},
                            params={"quirks": Quirks(crossing_name_sentinels=False)})
    assert ft == 3


def test_int_stress_not_reset_by_one_way(tmp_path):
    """§4.7 only blanks segment stress; crossing stress stays in both directions."""
    ft, tf = crossing_stress(tmp_path, {**OAK, "oneway": "yes"}, MAIN)
    assert (ft, tf) == (3, 1)
