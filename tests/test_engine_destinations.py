"""Destination construction rules (BNA-METHOD §9) on hand-built OSM point/polygon tables.

Coordinates are metres of the output CRS; expected results are worked out from the spec.
"""

from __future__ import annotations

import math
import types

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pna_engine import destinations
from pna_engine.params import Params, Quirks

UTM = "EPSG:32635"
X0, Y0 = 385000.0, 6672000.0


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def pt(x, y):
    return shapely.Point(X0 + x, Y0 + y)


def table(rows: list[dict]) -> gpd.GeoDataFrame:
    """OSM table as the import gives it: osm_id, tag columns (NULL = absent), geometry."""
    if not rows:
        return gpd.GeoDataFrame({"osm_id": []}, geometry=gpd.GeoSeries([], crs=UTM), crs=UTM)
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "geometry"} for r in rows])
    return gpd.GeoDataFrame(df, geometry=[r["geometry"] for r in rows], crs=UTM)


def blocks_2x1() -> gpd.GeoDataFrame:
    """Two 1000 m blocks side by side: A = [0,1000] x [0,1000], B = [1000,2000] x [0,1000]."""
    return gpd.GeoDataFrame({"geoid20": ["A00000000000001", "B00000000000002"]},
                            geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)], crs=UTM)


def run(points, polygons, quirks: Quirks | None = None, blocks=None):
    params = Params(boundary="x", output="x", quirks=quirks or Quirks())
    s = types.SimpleNamespace(
        params=params, crs=UTM, counts={},
        blocks=blocks if blocks is not None else blocks_2x1(),
        osm=types.SimpleNamespace(points=table(points), polygons=table(polygons)))
    return destinations.build_destinations(s), s


def test_every_category_has_the_reference_columns():
    d, s = run([], [])
    assert list(d) == list(destinations.CATEGORIES) and len(d) == 13
    for cat, t in d.items():
        extra = [] if cat == "retail" else ["osm_id", destinations.categories(Quirks())[
            cat].name_column]
        assert list(t.columns) == (["id", "blockid20"] + extra
                                   + ["pop_low_stress", "pop_high_stress", "pop_score",
                                      "geom_pt", "geom_poly"])
        assert t.geometry.name == "geom_pt" and t.crs == UTM
    assert s.counts["destinations"] == dict.fromkeys(destinations.CATEGORIES, 0)


def test_parks_single_linkage_clustering_and_unclustered_points():
    polys = [
        {"osm_id": 1, "leisure": "park", "geometry": box(0, 0, 10, 10)},
        {"osm_id": 2, "leisure": "park", "geometry": box(60, 0, 70, 10)},  # 50 m: same group
        {"osm_id": 3, "leisure": "playground", "geometry": box(121, 0, 131, 10)},  # 51 m: new
        {"osm_id": 4, "leisure": "pitch", "geometry": box(200, 0, 210, 10)},  # not a park
    ]
    points = [
        {"osm_id": 10, "amenity": "park", "name": "In", "geometry": pt(125, 5)},  # inside P3
        {"osm_id": 11, "leisure": "nature_reserve", "name": "Out", "geometry": pt(500, 500)},
    ]
    d, s = run(points, polys)
    parks = d["parks"]
    assert len(parks) == 3 and s.counts["destinations"]["parks"] == 3
    assert parks["id"].tolist() == [1, 2, 3]
    # two groups: P1 + P2 (union, 200 m2), P3; no osm_id/name on groups
    assert sorted(round(g.area) for g in parks["geom_poly"].iloc[:2]) == [100, 200]
    assert parks["osm_id"].iloc[:2].isna().all()
    g12 = parks.iloc[[0, 1]][parks["geom_poly"].iloc[:2].area.round() == 200].iloc[0]
    assert g12.geom_poly.geom_type == "MultiPolygon"
    assert g12.geom_pt.equals_exact(pt(35, 5), 1e-6)  # centroid of the union
    # only the point outside every polygon is a destination of its own
    last = parks.iloc[2]
    assert last.osm_id == 11 and last.park_name == "Out" and last.geom_poly is None
    assert last.geom_pt.equals(pt(500, 500))


@pytest.mark.parametrize("b3", [True, False])
def test_dentists_precedence_bug_b3(b3):
    polys = [{"osm_id": 1, "amenity": "dentist", "geometry": box(0, 0, 40, 40)}]
    points = [
        {"osm_id": 10, "amenity": "dentist", "name": "A", "geometry": pt(10, 10)},  # inside
        {"osm_id": 11, "healthcare": "dentist", "name": "H", "geometry": pt(20, 20)},  # inside
        {"osm_id": 12, "healthcare": "dentist", "name": "F", "geometry": pt(400, 400)},
    ]
    d, _ = run(points, polys, Quirks(amenity_points_inside_polygons=b3))
    ids = d["dentists"]["osm_id"].dropna().astype(int).tolist()
    # A OR (B AND NOT inside): amenity points inside a polygon survive with the quirk
    assert ids == ([10, 12] if b3 else [12])
    assert len(d["dentists"]) == 1 + len(ids)


def test_pharmacies_and_doctors_filters():
    points = [
        {"osm_id": 1, "shop": "chemist", "geometry": pt(10, 10)},
        {"osm_id": 2, "amenity": "pharmacy", "geometry": pt(20, 10)},
        {"osm_id": 3, "healthcare": "clinic", "geometry": pt(30, 10)},
        {"osm_id": 4, "amenity": "doctors", "geometry": pt(40, 10)},
        {"osm_id": 5, "healthcare": "hospital", "geometry": pt(50, 10)},
        {"osm_id": 6, "amenity": "hospitals", "geometry": pt(60, 10)},
    ]
    d, _ = run(points, [])
    assert d["pharmacies"]["osm_id"].tolist() == [1, 2]
    assert d["doctors"]["osm_id"].tolist() == [3, 4]
    assert d["hospitals"]["osm_id"].tolist() == [5, 6]
    assert len(d["retail"]) == 1  # shop=chemist is also a shop (one 10 m circle)


@pytest.mark.parametrize("b14", [True, False])
def test_schools_containment_and_identical_polygons_b14(b14):
    polys = [
        {"osm_id": 1, "amenity": "school", "name": "Big", "geometry": box(0, 0, 100, 100)},
        {"osm_id": 2, "amenity": "school", "name": "Inner", "geometry": box(10, 10, 20, 20)},
        {"osm_id": 3, "amenity": "kindergarten", "name": "Twin", "geometry": box(300, 0, 350, 50)},
        {"osm_id": 4, "amenity": "kindergarten", "name": "Twin", "geometry": box(300, 0, 350, 50)},
    ]
    points = [
        {"osm_id": 10, "amenity": "school", "name": "P-in", "geometry": pt(50, 50)},
        {"osm_id": 11, "amenity": "school", "name": "P-out", "geometry": pt(600, 600)},
        {"osm_id": 12, "amenity": "school", "name": "P-twin", "geometry": pt(325, 25)},
    ]
    d, _ = run(points, polys, Quirks(identical_polygons_both_deleted=b14))
    sch = d["schools"]
    # Inner is contained in Big -> deleted; identical twins contain each other
    if b14:
        assert sch["osm_id"].tolist() == [1, 11, 12]  # both twins gone, the point inside stays
    else:
        assert sch["osm_id"].tolist() == [1, 3, 11]
    big = sch.iloc[0]
    assert big.school_name == "Big" and big.geom_pt.equals_exact(pt(50, 50), 1e-6)
    assert big.geom_poly.equals(box(0, 0, 100, 100))


def test_supermarkets_and_social_services_are_individual():
    polys = [{"osm_id": 1, "shop": "supermarket", "name": "S", "geometry": box(0, 0, 30, 30)},
             {"osm_id": 2, "shop": "supermarket", "name": "T", "geometry": box(40, 0, 70, 30)}]
    points = [{"osm_id": 3, "amenity": "social_facility", "name": "F", "geometry": pt(5, 5)}]
    d, _ = run(points, polys)
    assert d["supermarkets"]["osm_id"].tolist() == [1, 2]  # 10 m apart: never clustered
    assert d["supermarkets"]["supermarket_name"].tolist() == ["S", "T"]
    assert d["social_services"]["service_name"].tolist() == ["F"]
    assert len(d["retail"]) == 0  # supermarkets are not retail


@pytest.mark.parametrize("b6", [True, False])
def test_transit_filters_polygons_and_point_clusters(b6):
    polys = [{"osm_id": 1, "railway": "station", "name": "Central",
              "geometry": box(0, 0, 100, 50)}]
    points = [
        {"osm_id": 10, "public_transport": "station", "geometry": pt(150, 25)},  # 50 m: near
        {"osm_id": 11, "amenity": "bus_station", "geometry": pt(500, 500)},
        {"osm_id": 12, "amenity": "ferry_terminal", "geometry": pt(570, 500)},  # 70 m from 11
        {"osm_id": 13, "amenity": "bus_station", "geometry": pt(700, 500)},  # 130 m from 12
        {"osm_id": 14, "railway": "station", "station": "miniature", "geometry": pt(900, 900)},
        {"osm_id": 15, "public_transport": "station", "geometry": pt(1500, 900)},  # NULL trap
        {"osm_id": 16, "public_transport": "station", "railway": "halt",
         "geometry": pt(1500, 100)},
    ]
    d, _ = run(points, polys, Quirks(transit_null_exclusion=b6))
    tr = d["transit"]
    assert tr["osm_id"].iloc[0] == 1 and tr["transit_name"].iloc[0] == "Central"
    centres = sorted((round(g.x - X0, 6), round(g.y - Y0, 6)) for g in tr["geom_pt"].iloc[1:])
    expected = [(535.0, 500.0), (700.0, 500.0), (1500.0, 100.0)]
    if not b6:  # without the quirk, public_transport=station alone is transit
        expected.append((1500.0, 900.0))
    assert centres == sorted(expected)
    assert tr["osm_id"].iloc[1:].isna().all() and tr["geom_poly"].iloc[1:].isna().all()


def test_retail_polygons_and_point_circles_cluster_together():
    polys = [{"osm_id": 1, "landuse": "retail", "geometry": box(0, 0, 20, 20)},
             {"osm_id": 2, "building": "retail", "geometry": box(300, 0, 320, 20)}]
    points = [
        {"osm_id": 10, "shop": "bakery", "geometry": pt(75, 10)},  # circle 45 m from polygon 1
        {"osm_id": 11, "shop": "supermarket", "geometry": pt(30, 10)},  # not retail
        {"osm_id": 12, "shop": "no", "geometry": pt(40, 10)},  # not retail
        {"osm_id": 13, "shop": "books", "geometry": pt(600, 10)},  # alone
    ]
    d, _ = run(points, polys)
    r = d["retail"]
    assert "osm_id" not in r.columns and len(r) == 3
    circle = 0.5 * 32 * 10**2 * math.sin(2 * math.pi / 32)  # 10 m buffer, 8 segments/quarter
    areas = sorted(round(a, 6) for a in r["geom_poly"].area)
    assert areas == sorted(round(a, 6) for a in (400 + circle, 400, circle))
    assert all(g.geom_type == "MultiPolygon" for g in r["geom_poly"])


def test_block_arrays_polygon_or_point_in_block_order():
    polys = [{"osm_id": 1, "amenity": "school", "geometry": box(900, 100, 1100, 200)},
             {"osm_id": 2, "amenity": "school", "geometry": box(5000, 0, 5010, 10)}]
    points = [{"osm_id": 3, "amenity": "school", "geometry": pt(1500, 500)},
              {"osm_id": 4, "amenity": "school", "geometry": pt(1000, 500)}]  # on the edge
    d, _ = run(points, polys)
    assert d["schools"]["blockid20"].tolist() == [
        ["A00000000000001", "B00000000000002"],  # polygon across both blocks
        [],  # outside every block: never reachable
        ["B00000000000002"],
        ["A00000000000001", "B00000000000002"],  # a point on the shared edge touches both
    ]


def test_retail_blocks_use_the_polygon_only():
    # a ring-shaped area around block C: its centroid lies in C, the ring itself only in B
    ring = shapely.difference(box(1300, 300, 1700, 700), box(1350, 350, 1650, 650))
    hole = box(1400, 400, 1600, 600)
    blocks = gpd.GeoDataFrame(
        {"geoid20": ["A00000000000001", "B00000000000002", "C00000000000003"]},
        geometry=[box(0, 0, 1000, 1000), shapely.difference(box(1000, 0, 2000, 1000), hole),
                  hole], crs=UTM)
    polys = [{"osm_id": 1, "landuse": "retail", "leisure": "park", "geometry": ring}]
    d, _ = run([], polys, blocks=blocks)
    assert d["retail"]["geom_pt"].iloc[0].equals_exact(pt(1500, 500), 1e-6)
    assert d["retail"]["blockid20"].tolist() == [["B00000000000002"]]
    assert d["parks"]["blockid20"].tolist() == [["B00000000000002", "C00000000000003"]]
