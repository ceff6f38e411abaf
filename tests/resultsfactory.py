"""Small BNA exports written by tests, in the shape of the reference tool's export
(BNA-METHOD.md §12: file names, column names, GeoJSON in EPSG:4326, CSV ``t``/``f`` booleans)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import LineString, Point, box

# a 2 x 2 grid of ~220 m cells in central Helsinki
X0, Y0, DX, DY = 24.940, 60.165, 0.004, 0.002
GEOIDS = ["910000000000001", "910000000000002", "910000000000003", "910000000000004"]
POP = [100.0, 50.0, 0.0, 80.0]
OVERALL = [90.0, 40.0, np.nan, 70.0]

#: (osm_id, name, class, speed, ft_seg, tf_seg, ft_int, tf_int, ft_infra, tf_infra) per way
WAYS = [
    (101, "Low Street", "residential", 20, 1, 1, 1, 1, None, None),
    (102, "Main Road", "primary", 40, 3, 3, 3, 1, None, None),
    (103, "Bike Path", "path", None, 1, 1, 1, 1, None, None),
    (104, "One Way", "secondary", 30, 3, None, 1, None, "lane", None),
    (105, "Track Avenue", "secondary", 30, 1, 1, 1, 3, "track", "track"),
    (106, "Quiet Lane", "unclassified", None, 1, 1, 1, 1, None, None),
]

SCORE_IDS = [
    ("people", 0.9439), ("opportunity_employment", 0.0), ("opportunity_k12_education", 1.0),
    ("opportunity_technical_vocational_college", 0.0), ("opportunity_higher_education", 0.0),
    ("opportunity", 1.0), ("core_services_doctors", 0.9143), ("core_services_dentists", 0.7857),
    ("core_services_hospitals", 0.0), ("core_services_pharmacies", 0.8371),
    ("core_services_grocery", 0.84), ("core_services_social_services", 0.7857),
    ("core_services", 0.8412), ("retail", 1.0), ("recreation_parks", 0.9038),
    ("recreation_trails", 0.0), ("recreation_community_centers", 0.0), ("recreation", 0.9038),
    ("transit", 1.0), ("overall_score", 0.8589),
]


def block_geoms() -> list:
    return [box(X0 + i * DX, Y0 + j * DY, X0 + (i + 1) * DX, Y0 + (j + 1) * DY)
            for j in range(2) for i in range(2)]


def way_geoms() -> list:
    xm, ym = X0 + DX, Y0 + DY
    return [
        LineString([(X0 + 0.0005, Y0 + 0.0005), (xm, Y0 + 0.0005)]),
        LineString([(X0, ym), (X0 + 2 * DX, ym)]),
        LineString([(xm, Y0), (xm, Y0 + 2 * DY)]),
        LineString([(X0 + 0.0005, Y0 + 1.5 * DY), (xm, Y0 + 1.5 * DY)]),
        LineString([(xm, Y0 + 1.5 * DY), (X0 + 2 * DX - 0.0005, Y0 + 1.5 * DY)]),
        LineString([(xm, Y0 + 0.5 * DY), (X0 + 2 * DX - 0.0005, Y0 + 0.5 * DY)]),
    ]


def write_export(folder: Path, overall_scale: float = 1.0, pna: bool = False,
                 status: str = "succeeded", score_shift: float = 0.0) -> Path:
    """Write a small export into ``folder``; ``pna=True`` adds run.json + status.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    overall = [v * overall_scale if v == v else v for v in OVERALL]
    blocks = gpd.GeoDataFrame({
        "geoid20": GEOIDS, "pop20": POP,
        "pop_low_stress": [150, 50, 0, 80], "pop_high_stress": [230, 230, 0, 230],
        "pop_score": [0.65, 0.22, np.nan, 0.35],
        "opportunity_score": [1.0, 0.5, np.nan, 0.8], "core_services_score": [0.9, 0.3, np.nan, 0.7],
        "retail_score": [1.0, 0.0, np.nan, 1.0], "recreation_score": [0.8, 0.4, np.nan, 0.6],
        "transit_score": [1.0, 1.0, np.nan, 0.0], "overall_score": overall,
        "reachable_blocks": [3, 3, 0, 3],
    }, geometry=block_geoms(), crs=4326)
    blocks.to_file(folder / "neighborhood_census_blocks.geojson", driver="GeoJSON")
    cols = ["osm_id", "name", "functional_class", "speed_limit", "ft_seg_stress",
            "tf_seg_stress", "ft_int_stress", "tf_int_stress", "ft_bike_infra", "tf_bike_infra"]
    ways = gpd.GeoDataFrame(pd.DataFrame(WAYS, columns=cols), geometry=way_geoms(), crs=4326)
    ways.insert(0, "road_id", range(1, len(ways) + 1))
    ways["intersection_from"] = [1, 2, 3, 4, 5, 6]
    ways["intersection_to"] = [7, 8, 9, 5, 10, 11]
    ways["ft_lanes"] = [1, 2, 1, 1, 1, 1]
    ways["tf_lanes"] = [1, 2, 1, None, 1, 1]
    ways.to_file(folder / "neighborhood_ways.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"id": [1, 2], "park_name": ["North Park", "South Park"],
                      "osm_id": [9001, 9002], "pop_score": [1.0, 0.5]},
                     geometry=[Point(X0 + 0.001, Y0 + 0.003), Point(X0 + 0.006, Y0 + 0.001)],
                     crs=4326).to_file(folder / "neighborhood_parks.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"id": [1]}, geometry=[box(X0, Y0, X0 + 2 * DX, Y0 + 2 * DY)],
                     crs=4326).to_file(folder / "neighborhood_boundary.geojson",
                                       driver="GeoJSON")
    rows = []
    for i, (sid, v) in enumerate(SCORE_IDS, start=1):
        v = min(1.0, v + score_shift) if sid == "overall_score" else v
        rows.append((i, sid, f"{v:.4f}", f"{round(v, 4) * 100:.4f}", "explanation"))
    rows += [(21, "population_total", "230.0000", "", "Total population of boundary"),
             (22, "total_miles_low_stress", "0.8000", "0.8000", "Total low-stress miles"),
             (23, "total_miles_high_stress", "0.4000", "0.4000", "Total high-stress miles")]
    lines = ["id,score_id,score_original,score_normalized,human_explanation"]
    lines += [",".join(str(x) for x in r) for r in rows]
    (folder / "neighborhood_overall_scores.csv").write_text("\n".join(lines) + "\n")
    (folder / "neighborhood_connected_census_blocks.csv").write_text(
        "source_blockid20,target_blockid20,low_stress,low_stress_cost,high_stress,high_stress_cost\n"
        f"{GEOIDS[0]},{GEOIDS[1]},t,120,t,110\n"
        f"{GEOIDS[0]},{GEOIDS[3]},f,,t,300\n"
        f"{GEOIDS[1]},{GEOIDS[0]},t,120,t,110\n")
    (folder / "mileage.csv").write_text("feature_type,total_mileage\nlane,0.1\npath,0.2\n")
    if pna:
        (folder / "run.json").write_text(json.dumps({"engine": "pna_engine",
                                                     "engine_version": "test",
                                                     "parameters": {"boundary": "b"}}))
        (folder / "status.json").write_text(json.dumps({"state": status, "phase": "export",
                                                        "error": None}))
    return folder
