"""OSM import (BNA-METHOD §2.3-§2.4): double clip, osm2pgrouting segmentation, osm2pgsql
tables, what-if tag edits, file formats and bad inputs; boundary loading (§2.1-§2.2) and the
residential speed table (§2.7); the Helsinki extract end to end up to stress."""

from __future__ import annotations

import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from osmfactory import LAT0, LON0, box_polygon_geojson, grid_nodes, offset, run_to_stress, write_osm
from shapely.geometry import Point, box

from pna_engine import boundary, osm, speeds
from pna_engine.errors import InputError
from pna_engine.params import Params
from pna_engine.state import RunState


def _segs_by_way(s, way_id):
    seg = s.osm.segments
    return seg[seg["osm_id"] == way_id]


def _node_ids(s):
    ints = s.osm.intersections
    return dict(zip(ints["int_id"].astype(int), ints["osm_id"].astype(int)))


# --------------------------------------------------------------------------- segmentation
def test_split_at_nodes_shared_with_any_way(tmp_path):
    """uses(node) counts every way of the file: a building corner and a footway (deleted later)
    split the street; a node used once does not."""
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (50, 0), 3: (100, 0), 4: (150, 0), 5: (200, 0),
                                    10: (100, 30), 11: (130, 30), 20: (150, -50)})
    ways = {100: ([1, 2, 3, 4, 5], {"highway": "residential", "name": "Oak St"}),
            200: ([3, 10, 11, 3], {"building": "yes"}),
            300: ([4, 20], {"highway": "footway"})}
    s = run_to_stress(tmp_path, nodes, ways)
    seg = _segs_by_way(s, 100).sort_values("road_id")
    ids = _node_ids(s)
    ends = [(ids[int(f)], ids[int(t)]) for f, t in zip(seg["intersection_from"], seg["intersection_to"])]
    assert ends == [(1, 3), (3, 4), (4, 5)]
    assert [len(g.coords) for g in seg.geometry] == [3, 2, 2]
    assert list(seg["name"]) == ["Oak St"] * 3
    assert set(seg["tag_id"].astype(int)) == {osm.HIGHWAY_TAG_IDS["residential"]}
    # the footway segment exists in the import (tag 119) but not in the final ways
    assert set(_segs_by_way(s, 300)["tag_id"].astype(int)) == {119}
    assert 300 not in set(s.ways["osm_id"].astype(int))
    # the building is not a segment but a polygon
    assert 200 in set(s.osm.polygons["osm_id"].astype(int))
    assert 200 not in set(s.osm.segments["osm_id"].astype(int))


def test_closed_way_and_repeated_node(tmp_path):
    """A closed way counts its first node twice; its interior nodes used once do not split it."""
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (60, 0), 3: (60, 60), 4: (-60, 0)})
    ways = {1: ([1, 2, 3, 1], {"highway": "residential"}), 2: ([4, 1], {"highway": "residential"})}
    s = run_to_stress(tmp_path, nodes, ways)
    loop = _segs_by_way(s, 1)
    assert len(loop) == 1
    assert int(loop["intersection_from"].iloc[0]) == int(loop["intersection_to"].iloc[0])


def test_segments_equal_to_an_earlier_chunk_are_dropped(tmp_path, monkeypatch):
    """osm2pgrouting exports the ways by chunks (all ways of the file in id order, tagged or
    not) and deletes a segment whose geometry equals, point for point in the same order, one
    written by an earlier chunk; equal segments inside one chunk all stay. With chunks of 2
    ways: chunk 0 = ways 1, 2 (the building takes a slot); chunk 1 = 3, 4; chunk 2 = 5, 6."""
    monkeypatch.setattr(osm, "OSM2PGROUTING_CHUNK", 2)
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (100, 0), 3: (0, 50), 4: (50, 80),
                                    5: (100, 50)})
    ways = {1: ([1, 2], {"highway": "residential"}),
            2: ([3, 4, 5, 3], {"building": "yes"}),
            3: ([1, 2], {"highway": "footway"}),         # equal to way 1 (chunk 0): dropped
            4: ([2, 1], {"highway": "residential"}),     # reversed order: not equal, stays
            5: ([5, 1], {"highway": "cycleway"}),
            6: ([5, 1], {"highway": "residential"})}     # equal to way 5, same chunk: stays
    s = run_to_stress(tmp_path, nodes, ways)
    assert sorted(s.osm.segments["osm_id"].astype(int)) == [1, 4, 5, 6]
    monkeypatch.setattr(osm, "OSM2PGROUTING_CHUNK", 20000)  # one chunk: nothing is dropped
    s = run_to_stress(tmp_path / "one", nodes, ways)
    assert sorted(s.osm.segments["osm_id"].astype(int)) == [1, 3, 4, 5, 6]


def test_relation_with_a_highway_first_tag_tags_its_member_ways(tmp_path):
    """osm2pgrouting's relation pass: a relation whose FIRST tag is a mapconfig highway value
    gives that class to all its member ways - untagged ones become segments too (they have no
    line row, so no functional class, and leave the network), tagged ones take its tag_id; a
    relation whose first tag is something else changes nothing."""
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (100, 0), 3: (100, 100), 4: (0, 100),
                                    5: (200, 0), 6: (300, 0), 7: (-100, 0)})
    ways = {10: ([1, 2, 3, 4, 1], {}),
            11: ([2, 5], {"highway": "footway", "bicycle": "designated"}),
            12: ([5, 6], {"highway": "footway", "bicycle": "designated"}),
            13: ([7, 2], {"highway": "residential"})}
    relations = {
        100: ([("w", 10, "outer"), ("w", 11, "")],
              {"highway": "pedestrian", "type": "multipolygon", "area": "yes"}),
        101: ([("w", 12, "")], {"type": "multipolygon", "highway": "pedestrian"})}
    s = run_to_stress(tmp_path, nodes, ways, relations)
    tag = {int(o): int(t) for o, t in zip(s.osm.segments["osm_id"], s.osm.segments["tag_id"])}
    ped, foot = osm.HIGHWAY_TAG_IDS["pedestrian"], osm.HIGHWAY_TAG_IDS["footway"]
    assert tag == {10: ped, 11: ped, 12: foot, 13: osm.HIGHWAY_TAG_IDS["residential"]}
    assert sorted(set(s.ways["osm_id"].astype(int))) == [11, 12, 13]


def test_oneway_text_column(tmp_path):
    """osm2pgrouting's ``oneway`` text: each tag in file order, the first that decides wins;
    roundabouts and motorways imply YES; its true and false lists both hold "1" (the false
    test runs second), so oneway=1 is NO; values it does not know leave UNKNOWN."""
    cases = {
        1: {"highway": "residential", "oneway": "yes"},                        # YES
        2: {"highway": "residential", "oneway": "no"},                         # NO
        3: {"highway": "residential", "oneway": "-1"},                         # REVERSED
        4: {"highway": "residential"},                                         # UNKNOWN
        5: {"highway": "residential", "oneway": "1"},                          # NO (both lists)
        6: {"highway": "residential", "oneway": "true"},                       # YES
        7: {"highway": "residential", "oneway": "reversible"},                 # REVERSIBLE
        8: {"highway": "residential", "oneway": "reverse"},                    # not a value
        9: {"highway": "residential", "oneway": "0"},                          # not a value
        10: {"highway": "motorway"},                                           # implied
        11: {"highway": "motorway", "oneway": "no"},                           # implied first
        12: {"oneway": "no", "highway": "motorway"},                           # oneway first
        13: {"highway": "residential", "junction": "roundabout", "oneway": "-1"},  # implied
        14: {"highway": "residential", "oneway": "-1", "junction": "roundabout"},  # -1 first
        15: {"highway": "trunk"},                                              # not implied
    }
    nodes = grid_nodes(LON0, LAT0, {i: (i * 50, 0) for i in range(1, len(cases) + 2)})
    ways = {w: ([w, w + 1], t) for w, t in cases.items()}
    s = run_to_stress(tmp_path, nodes, ways)
    got = dict(zip(s.osm.segments["osm_id"].astype(int), s.osm.segments["oneway"]))
    assert got == {1: "YES", 2: "NO", 3: "REVERSED", 4: "UNKNOWN", 5: "NO", 6: "YES",
                   7: "REVERSIBLE", 8: "UNKNOWN", 9: "UNKNOWN", 10: "YES", 11: "YES",
                   12: "NO", 13: "YES", 14: "REVERSED", 15: "UNKNOWN"}


# --------------------------------------------------------------------------- clipping
def _clip_case(tmp_path, blocks):
    """Boundary: square of half-side 300 m. Way 1 runs from inside (0,0) to outside (600,0)
    through (200,0) and (400,0); way 2 lies wholly outside; way 3 lies inside."""
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (200, 0), 3: (400, 0), 4: (600, 0),
                                    5: (800, 100), 6: (900, 100), 7: (0, 100), 8: (0, -100),
                                    9: (450, 50, {"amenity": "cafe"}),
                                    10: (50, 50, {"amenity": "pharmacy"}),
                                    11: (700, 0, {"amenity": "bench"})})
    ways = {1: ([1, 2, 3, 4], {"highway": "residential"}),
            2: ([5, 6], {"highway": "residential"}),
            3: ([7, 1, 8], {"highway": "residential"}),
            4: ([3, 11], {"highway": "footway"})}
    return run_to_stress(tmp_path, nodes, ways, blocks=blocks, boundary_half_m=300)


def test_polygon_clip_keeps_complete_ways(tmp_path):
    s = _clip_case(tmp_path, blocks=None)
    seg = s.osm.segments
    assert 2 not in set(seg["osm_id"].astype(int))                # wholly outside
    way1 = seg[seg["osm_id"] == 1]
    assert sum(len(g.coords) for g in way1.geometry) - (len(way1) - 1) == 4  # all 4 nodes
    pts = set(s.osm.points["osm_id"].astype(int))
    assert 10 in pts and 9 not in pts    # 9 is outside the polygon and on no kept way
    assert 11 not in pts                 # node of way 4, which has no node inside


def test_bbox_clip_truncates_ways(tmp_path):
    """The second clip (bbox of the retained blocks) drops nodes outside the box and truncates
    the ways to their in-box nodes (osmconvert --drop-broken-refs)."""
    x0, y0 = offset(LON0, LAT0, -250, -150)
    x1, y1 = offset(LON0, LAT0, 250, 150)
    blocks = gpd.GeoDataFrame({"geoid20": ["a"], "pop20": [10]}, geometry=[box(x0, y0, x1, y1)],
                              crs="EPSG:4326")
    s = _clip_case(tmp_path, blocks=blocks)
    way1 = s.osm.segments[s.osm.segments["osm_id"] == 1]
    xs = np.concatenate([np.asarray(g.coords)[:, 0] for g in way1.geometry])
    # only nodes 1 (0 m) and 2 (200 m) remain: the way ends at 200 m
    bx = s.boundary.geometry.iloc[0].centroid.x
    assert xs.max() - bx == pytest.approx(200, abs=2)
    assert len(way1) == 1 and len(way1.geometry.iloc[0].coords) == 2


# --------------------------------------------------------------------------- osm2pgsql tables
def test_attribute_tables(tmp_path):
    nodes = grid_nodes(LON0, LAT0, {
        1: (0, 0), 2: (100, 0), 3: (100, 100), 4: (0, 100),
        5: (20, 20), 6: (80, 20), 7: (80, 80), 8: (20, 80),
        9: (300, 0), 10: (400, 0), 11: (400, 100), 12: (300, 100),
        13: (-200, 0), 14: (-200, 50),
        20: (10, -50, {"amenity": "pharmacy", "name": "Apteekki"}),
        21: (20, -50, {"note": "not a style tag"}),
        22: (30, -50, {"highway": "traffic_signals"}),
        30: (500, 0), 31: (600, 0), 32: (600, 100), 33: (500, 100)})
    ways = {
        1: ([1, 2, 3, 4, 1], {}), 2: ([5, 6, 7, 8, 5], {}),      # multipolygon members
        3: ([9, 10, 11, 12, 9], {}),                             # second outer
        4: ([13, 14], {"highway": "cycleway", "cycleway:left:width": "2", "surface": "asphalt",
                       "smoothness": "good"}),
        5: ([30, 31, 32, 33, 30], {"highway": "residential", "area": "yes"}),
        6: ([30, 13], {"highway": "residential"}),
        7: ([9, 13], {"leisure": "park", "area": "no"}),
    }
    relations = {77: ([("w", 1, "outer"), ("w", 2, "inner"), ("w", 3, "outer")],
                      {"type": "multipolygon", "landuse": "retail", "name": "Mall"})}
    s = run_to_stress(tmp_path, nodes, ways, relations)
    lines = s.osm.lines.set_index(s.osm.lines["osm_id"].astype(int))
    assert lines.loc[4, "cycleway:left:width"] == "2"
    assert lines.loc[4, "surface"] == "asphalt"
    assert "smoothness" not in lines.columns                     # not a style column
    assert 5 not in lines.index                                   # closed area=yes -> polygon
    assert 7 in lines.index                                       # area=no: a line
    assert 1 not in lines.index                                   # untagged: no row
    polys = s.osm.polygons
    rel = polys[polys["osm_id"] == -77]
    assert len(rel) == 2                                          # one row per part
    assert set(rel["landuse"]) == {"retail"} and set(rel["name"]) == {"Mall"}
    areas = sorted(rel.geometry.area)
    assert areas[0] == pytest.approx(100 * 100 - 60 * 60, rel=0.02)   # hole cut out
    assert areas[1] == pytest.approx(100 * 100, rel=0.02)
    assert 5 in set(polys["osm_id"].astype(int))
    pts = s.osm.points.set_index(s.osm.points["osm_id"].astype(int))
    assert pts.loc[20, "amenity"] == "pharmacy" and pts.loc[20, "name"] == "Apteekki"
    assert pts.loc[22, "highway"] == "traffic_signals"
    assert 21 not in pts.index
    for table in (s.osm.points, s.osm.polygons, s.osm.lines):
        for col in ("amenity", "shop", "healthcare", "leisure", "landuse", "building", "railway",
                    "public_transport", "station", "name"):
            assert col in table.columns
    # the closed highway with area=yes has no line row, so no class: not in the ways
    assert 5 not in set(s.ways["osm_id"].astype(int))
    assert s.osm.points.crs == s.crs and s.osm.polygons.crs == s.crs


def test_line_rows_need_a_linestring_and_closed_areas_never_fall_back(tmp_path):
    """osm2pgsql: a closed area way goes down the polygon branch and gets no line row even when
    no polygon can be built (here 3 nodes: A-B-A); a way whose nodes all sit at one location
    makes a 1-point linestring and so no line row. Without a line row a segment gets no
    functional class and leaves the network, although osm2pgrouting made it a segment."""
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (100, 0), 3: (200, 0), 4: (300, 0),
                                    5: (0, 0), 6: (100, 100), 7: (200, 100)})
    ways = {1: ([1, 2, 3, 4], {"highway": "residential"}),
            2: ([1, 5], {"highway": "residential"}),                     # both nodes at (0, 0)
            3: ([2, 6, 2], {"highway": "residential", "area": "yes"}),   # closed, 3 nodes
            4: ([3, 7, 3], {"building": "yes"}),                         # closed, 3 nodes
            5: ([2, 6, 3], {"highway": "residential", "area": "yes"})}   # not closed: a line
    s = run_to_stress(tmp_path, nodes, ways)
    assert sorted(s.osm.lines["osm_id"].astype(int)) == [1, 5]
    assert len(s.osm.polygons) == 0
    assert {2, 3} <= set(s.osm.segments["osm_id"].astype(int))
    assert sorted(set(s.ways["osm_id"].astype(int))) == [1, 5]


def test_way_tag_edits(tmp_path):
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (100, 0), 3: (200, 0)})
    ways = {1: ([1, 2], {"highway": "residential", "maxspeed": "50"}),
            2: ([2, 3], {"highway": "footway"})}
    base = run_to_stress(tmp_path / "a", nodes, ways)
    assert set(base.ways["osm_id"].astype(int)) == set()   # way 1 alone is an orphan
    edited = run_to_stress(tmp_path / "b", nodes, ways, way_tag_edits={
        1: {"maxspeed": None}, 2: {"highway": "cycleway", "name": "New path"}})
    w = edited.ways.set_index(edited.ways["osm_id"].astype(int))
    assert w.loc[2, "functional_class"] == "path" and w.loc[2, "name"] == "New path"
    assert pd.isna(w.loc[1, "speed_limit"])


@pytest.mark.parametrize("ext", [".osm", ".osm.gz", ".osm.bz2", ".osm.pbf"])
def test_file_formats(tmp_path, ext):
    nodes = grid_nodes(LON0, LAT0, {1: (0, 0), 2: (100, 0), 3: (200, 0)})
    ways = {1: ([1, 2], {"highway": "residential"}), 2: ([2, 3], {"highway": "cycleway"})}
    s = run_to_stress(tmp_path, nodes, ways, ext=ext)
    assert sorted(s.ways["functional_class"]) == ["path", "residential"]


# --------------------------------------------------------------------------- bad inputs
def _state(tmp_path, **kw):
    bpath = box_polygon_geojson(tmp_path / "b.geojson", LON0, LAT0, 500)
    p = Params(boundary=str(bpath), output=str(tmp_path / "out"), country="finland", **kw)
    s = RunState(params=p, staging=tmp_path)
    s.boundary, s.crs = boundary.load_boundary(bpath, p)
    return s


def test_missing_osm_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        osm.import_osm(tmp_path / "nope.osm.pbf", _state(tmp_path))


def test_corrupt_osm_file(tmp_path):
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0dthis is not a pbf file at all" * 10)
    with pytest.raises(InputError, match="cannot read the OSM file") as e:
        osm.import_osm(bad, _state(tmp_path))
    assert "\n" not in str(e.value)
    bad_xml = tmp_path / "bad.osm"
    bad_xml.write_text("<osm><node id='1' lat='x'")
    with pytest.raises(InputError):
        osm.import_osm(bad_xml, _state(tmp_path))


def test_osm_not_overlapping_boundary(tmp_path):
    far = {1: (LON0 + 1, LAT0 + 1), 2: (LON0 + 1.001, LAT0 + 1)}
    path = write_osm(tmp_path / "far.osm.pbf", far, {1: ([1, 2], {"highway": "residential"})})
    with pytest.raises(InputError, match="no data inside the boundary"):
        osm.import_osm(path, _state(tmp_path))


def test_boundary_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        boundary.load_boundary(tmp_path / "missing.shp")
    pts = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[Point(LON0, LAT0)], crs="EPSG:4326").to_file(pts)
    with pytest.raises(InputError, match="not polygons"):
        boundary.load_boundary(pts)
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:4326")).to_file(empty)
    with pytest.raises(InputError, match="no features"):
        boundary.load_boundary(empty)
    junk = tmp_path / "junk.geojson"
    junk.write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        boundary.load_boundary(junk)


def test_boundary_formats_and_crs(tmp_path):
    """Shapefile (other CRS), zipped shapefile, GeoPackage, GeoJSON without CRS: the same
    dissolved MultiPolygon in the UTM zone of the bbox centre."""
    x0, y0 = offset(LON0, LAT0, -500, -500)
    x1, y1 = offset(LON0, LAT0, 500, 500)
    two = gpd.GeoDataFrame({"n": [1, 2]}, geometry=[box(x0, y0, LON0, y1), box(LON0, y0, x1, y1)],
                           crs="EPSG:4326")
    shp = tmp_path / "b.shp"
    two.to_crs("EPSG:3857").to_file(shp)
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in tmp_path.glob("b.*"):
            if f.suffix != ".zip":
                zf.write(f, f.name)
    gpkg = tmp_path / "b.gpkg"
    two.to_file(gpkg)
    nocrs = tmp_path / "nocrs.geojson"
    nocrs.write_text(two.to_json().replace('"crs"', '"_crs"'))
    results = [boundary.load_boundary(p) for p in (shp, z, gpkg, nocrs)]
    for gdf, crs in results:
        assert crs.to_epsg() == 32635            # UTM 35N for Helsinki
        assert len(gdf) == 1 and gdf.geometry.iloc[0].geom_type == "MultiPolygon"
        assert gdf.geometry.iloc[0].area == pytest.approx(1000 * 1000, rel=0.02)
        assert shapely.equals_exact(shapely.normalize(gdf.attrs["wgs84"]),
                                    shapely.normalize(results[0][0].attrs["wgs84"]), 1e-6)


@pytest.mark.parametrize(("lon", "lat", "epsg"), [
    (24.94, 60.17, 32635), (-76.6, 39.3, 32618), (151.2, -33.9, 32756),
    (6.0, 45.0, 32631),     # on the 31/32 edge: the western zone (lowest code) comes first
    (30.0, 75.0, 32635), (-72.0, 40.0, 32618), (0.0, 10.0, 32630),
    (25.0, 0.0, 32635),     # on the equator: the northern zone
    (-180.0, 10.0, 32601), (180.0, 10.0, 32660)])
def test_utm_zone_of_the_bbox_centre(lon, lat, epsg):
    """§2.2: the first UTM zone (lowest EPSG code) whose closed area of use - zone z spans
    longitudes 6(z-1)-180 to 6z-180, north 0 to 84, south -80 to 0 - holds the bbox centre."""
    assert boundary.utm_crs(lon - 0.25, lat - 0.1, lon + 0.25, lat + 0.1).to_epsg() == epsg


# --------------------------------------------------------------------------- speeds
def test_residential_speed_table():
    us = speeds.residential_speeds(Params(boundary="b", output="o", country="united states",
                                          state_fips="25", city_fips="2500001",
                                          state_speed_limit=25, city_speed_limit=30))
    assert us.iloc[0].to_dict() == {"state_fips_code": "25", "city_fips_code": "2500001",
                                    "state_speed": 25, "city_speed": 30}
    assert speeds.residential_default(us) == 30     # city over state
    non_us = speeds.residential_speeds(Params(boundary="b", output="o", country="finland"))
    row = non_us.iloc[0]
    assert (row["state_fips_code"], row["city_fips_code"]) == ("0 ", "0      ")
    assert row["state_speed"] is np.nan or str(row["state_speed"]) == "<NA>"
    assert row["city_speed"] == 30
    us_none = speeds.residential_speeds(Params(boundary="b", output="o", country="US", state="MA"))
    assert us_none.iloc[0]["state_fips_code"] == "25"
    assert speeds.residential_default(us_none) is None


# --------------------------------------------------------------------------- Helsinki
@pytest.mark.slow
def test_helsinki_to_stress(helsinki_pbf, tmp_path):
    """The real extract through import -> features -> stress: every class present gets stress
    1 or 3, the one-way reset holds, intersections carry their flags, and it is fast."""
    from pna_engine import features, stress

    raw = osm.read_osm(helsinki_pbf)
    lon0, lon1 = np.nanpercentile(raw.lon, [25, 75])
    lat0, lat1 = np.nanpercentile(raw.lat, [25, 75])
    bpath = tmp_path / "helsinki.geojson"
    gpd.GeoDataFrame(geometry=[box(lon0, lat0, lon1, lat1)], crs="EPSG:4326").to_file(bpath)
    p = Params(boundary=str(bpath), output=str(tmp_path / "out"), country="finland")
    s = RunState(params=p, staging=tmp_path)
    s.boundary, s.crs = boundary.load_boundary(bpath, p)
    s.speeds = speeds.residential_speeds(p)
    s.osm = osm.import_osm(helsinki_pbf, s)
    s.ways, s.intersections, s.paths = features.compute_features(s)
    s.ways = stress.compute_stress(s)
    w = s.ways
    assert len(w) > 300 and len(s.intersections) > 200 and len(s.paths) > 0
    assert set(w["functional_class"]) >= {"primary", "secondary", "path", "unclassified"}
    for col in ("ft_seg_stress", "tf_seg_stress", "ft_int_stress", "tf_int_stress"):
        assert set(w[col].dropna().astype(int)) <= {1, 3}
    assert w["ft_int_stress"].notna().all() and w["tf_int_stress"].notna().all()
    assert w.loc[w["one_way"] == "ft", "tf_seg_stress"].isna().all()
    assert w.loc[w["one_way"].isna(), ["ft_seg_stress", "tf_seg_stress"]].notna().all().all()
    assert (w.loc[w["functional_class"].isin(["primary", "secondary"]) &
                  w["ft_bike_infra"].isna(), "ft_seg_stress"].dropna() == 3).all()
    assert s.intersections["signalized"].any()
    assert w["tdg_id"].is_unique


def test_bbox_clip_fixed_point_border(tmp_path):
    """osmconvert truncates the box to 1e-7 degrees and keeps nodes on its border: a node at
    60.1670959 is kept for a box starting at 60.16709593; one at 60.1670958 is not."""
    nodes = {1: (24.9440000, 60.1670959), 2: (24.9450000, 60.1670959),
             3: (24.9445000, 60.1670958), 4: (24.9446000, 60.1680000),
             5: (24.9447000, 60.1670958, {"amenity": "cafe"})}
    ways = {1: ([1, 2], {"highway": "residential"}), 2: ([3, 4], {"highway": "residential"})}
    path = write_osm(tmp_path / "edge.osm.pbf", nodes, ways)
    raw = osm.clip_bbox(osm.read_osm(path), (24.94, 60.16709593, 24.95, 60.17))
    kept = dict(zip(raw.way_ids.tolist(), [raw.refs[raw.wix == i].tolist()
                                           for i in range(len(raw.way_ids))]))
    assert kept == {1: [1, 2], 2: [4]}
    assert raw.node_ids.tolist() == []


@pytest.mark.skipif(__import__("shutil").which("osmium") is None,
                    reason="the osmium command (osmium-tool) is not installed")
def test_large_file_preclip_with_osmium_tool(tmp_path, monkeypatch):
    """Large extracts are first cut with ``osmium extract`` (complete ways): same tables as
    reading the whole file."""
    x = _clip_case(tmp_path / "plain", blocks=None)
    monkeypatch.setattr(osm, "LARGE_OSM_BYTES", 0)
    y = _clip_case(tmp_path / "preclip", blocks=None)
    assert any("osmium extract" in n for n in y.notes)
    for name in ("segments", "intersections", "lines", "points", "polygons"):
        a, b = getattr(x.osm, name), getattr(y.osm, name)
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry")), name
        assert a.geometry.geom_equals_exact(b.geometry, 1e-6).all(), name
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"garbage" * 1000)
    with pytest.raises(InputError, match="cannot read the OSM file"):
        osm.import_osm(bad, _state(tmp_path / "bad"))
