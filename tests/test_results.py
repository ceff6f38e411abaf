"""Results loading: official-style exports (folder, zip, shapefile-only, s3) and PNA folders."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from resultsfactory import GEOIDS, WAYS, write_export

from pna_engine.errors import InputError
from pna_helpers import compare
from pna_helpers.results import MAIN_SCORES, load_results


@pytest.fixture()
def official(tmp_path: Path) -> Path:
    # the reference tool's folder layout: <country>/<region>/<city>/<YY.MM>
    return write_export(tmp_path / "finland" / "uusimaa" / "helsinki" / "24.05")


def test_official_folder_loads_with_reference_columns(official: Path) -> None:
    res = load_results(official)
    assert res.source == "official"
    assert res.name == "helsinki"  # the city folder above YY.MM
    s = res.scores()
    assert s["overall_score"] == pytest.approx(85.89)
    assert s["people"] == pytest.approx(94.39)
    assert s["population_total"] == pytest.approx(230.0)  # no normalised value: the original
    assert res.ways.crs.to_epsg() == 4326
    assert {"ft_seg_stress", "tf_int_stress", "functional_class"} <= set(res.ways.columns)
    assert list(res.blocks["geoid20"]) == GEOIDS
    assert res.blocks["geoid20"].map(type).eq(str).all()
    parks = res.destinations("parks")
    assert list(parks["park_name"]) == ["North Park", "South Park"]
    assert set(res.all_destinations()) == {"parks"}
    summary = res.summary()
    assert list(summary.index[: len(MAIN_SCORES)])[0] == "Overall"


def test_connected_pairs_booleans_and_gzip(official: Path) -> None:
    res = load_results(official)
    cp = res.connected_pairs()
    assert cp["low_stress"].dtype == bool
    assert cp["low_stress"].tolist() == [True, False, True]
    assert cp["source_blockid20"].iloc[0] == GEOIDS[0]  # ids stay strings
    # big places write .csv.gz: same table
    src = official / "neighborhood_connected_census_blocks.csv"
    pd.read_csv(src).to_csv(official / "neighborhood_connected_census_blocks.csv.gz", index=False)
    src.unlink()
    cp2 = load_results(official).connected_pairs()
    assert cp2["low_stress"].tolist() == [True, False, True]


def test_zip_bundle_with_subfolder(official: Path, tmp_path: Path) -> None:
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in official.rglob("*"):
            zf.write(p, Path("export") / "helsinki" / p.relative_to(official))
    res = load_results(z)
    assert res.source == "official"
    assert res.scores()["overall_score"] == pytest.approx(85.89)
    assert len(res.ways) == len(WAYS)



def test_official_export_outside_its_layout_is_named_by_its_boundary(tmp_path: Path) -> None:
    # the reference tool's export copied to a folder such as "reference": the boundary's
    # name attribute names the place, not the folder
    folder = write_export(tmp_path / "reference")
    b = gpd.read_file(folder / "neighborhood_boundary.geojson")
    b["name"] = "Helsinki <b>&</b> co"
    b.to_file(folder / "neighborhood_boundary.geojson", driver="GeoJSON")
    assert load_results(folder).name == "Helsinki <b>&</b> co"
    assert load_results(folder, name="Kallio").name == "Kallio"  # a given name wins
    # shapefile-only export: the same attribute
    shp = tmp_path / "shp" / "export"
    shp.mkdir(parents=True)
    b.to_file(shp / "neighborhood_boundary.shp")
    for f in folder.iterdir():
        if f.name != "neighborhood_boundary.geojson":
            shutil.copy(f, shp / f.name)
    assert load_results(shp).name == "Helsinki <b>&</b> co"
    # no name attribute (or several names): the folder name, as before
    nameless = write_export(tmp_path / "kallio")
    assert load_results(nameless).name == "kallio"
    b2 = gpd.read_file(nameless / "neighborhood_boundary.geojson")
    b2 = pd.concat([b2, b2]).assign(name=["A", "B"])
    b2.to_file(nameless / "neighborhood_boundary.geojson", driver="GeoJSON")
    assert load_results(nameless).name == "kallio"

def test_shapefile_only_export_gets_full_column_names(official: Path) -> None:
    # the original BNA ships shapefiles: GDAL truncates names to 10 characters
    ways = gpd.read_file(official / "neighborhood_ways.geojson")
    ways["intersection_from"] = 1
    ways["intersection_to"] = 2
    (official / "neighborhood_ways.geojson").unlink()
    ways.to_file(official / "neighborhood_ways.shp")
    res = load_results(official)
    assert res.path("neighborhood_ways").suffix == ".shp"
    cols = set(res.ways.columns)
    assert {"ft_seg_stress", "tf_seg_stress", "ft_int_stress", "tf_int_stress", "functional_class",
            "intersection_from", "intersection_to", "ft_bike_infra", "speed_limit"} <= cols
    assert res.ways.crs.to_epsg() == 4326


def test_pna_folder_and_incomplete_runs(tmp_path: Path) -> None:
    ok = write_export(tmp_path / "ok", pna=True)
    res = load_results(ok)
    assert res.source == "pna" and res.run["engine"] == "pna_engine"
    running = write_export(tmp_path / "running", pna=True, status="running")
    with pytest.raises(InputError, match="incomplete.*running.*wait for it to finish$"):
        load_results(running)
    failed = write_export(tmp_path / "failed", pna=True, status="failed")
    st = json.loads((failed / "status.json").read_text())
    st["error"] = "no highways in the boundary"
    (failed / "status.json").write_text(json.dumps(st))
    with pytest.raises(InputError, match="failed.*no highways in the boundary; re-run it "
                                         r"\(the run has ended"):
        load_results(failed)
    # a run that started but has not exported anything yet
    started = tmp_path / "started"
    started.mkdir()
    (started / "status.json").write_text(json.dumps({"state": "running", "phase": "import"}))
    with pytest.raises(InputError, match="incomplete"):
        load_results(started)


def test_bad_locations_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a BNA results folder"):
        load_results(tmp_path / "empty")
    bad = tmp_path / "bad.zip"
    bad.write_text("not a zip")
    with pytest.raises(InputError, match="not a readable zip"):
        load_results(bad)


def test_compare_two_sets(tmp_path: Path) -> None:
    a = load_results(write_export(tmp_path / "a"), name="A")
    b = load_results(write_export(tmp_path / "b", overall_scale=0.5, score_shift=-0.1), name="B")
    tab = compare.scores_table([a, b])
    assert list(tab.columns) == ["A", "B", "difference"]
    assert tab.loc["Overall", "difference"] == pytest.approx(-10.0)
    diff = compare.block_differences(a, b)
    d = dict(zip(diff["geoid20"], diff["delta"]))
    assert d[GEOIDS[0]] == pytest.approx(-45.0)  # 45 - 90
    assert pd.isna(d[GEOIDS[2]])  # no score in either


def _drop_block_columns(folder: Path, *columns: str) -> Path:
    """The export with ``columns`` left out of its census blocks (an official variant)."""
    path = folder / "neighborhood_census_blocks.geojson"
    gpd.read_file(path).drop(columns=list(columns)).to_file(path, driver="GeoJSON")
    return folder


def _one_line(exc: pytest.ExceptionInfo[InputError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_block_columns_are_one_line_input_errors(tmp_path: Path) -> None:
    from pna_helpers import charts
    from pna_helpers.scenario import block_access_changes

    full = load_results(write_export(tmp_path / "full"), name="Full")
    # an export variant whose blocks have no id column (neither geoid20 nor blockid10)
    no_id = load_results(_drop_block_columns(write_export(tmp_path / "no-id"), "geoid20"),
                         name="No id")
    with pytest.raises(InputError) as e:
        compare.block_differences(full, no_id)
    msg = _one_line(e)
    assert "census blocks of No id have no column 'geoid20'" in msg
    assert "neighborhood_census_blocks has 'geoid20'" in msg  # what to do
    # one without the block scores PNA writes
    no_scores = load_results(_drop_block_columns(write_export(tmp_path / "no-scores"),
                                                 "overall_score", "pop_low_stress"))
    with pytest.raises(InputError) as e:
        charts.block_score_distribution(no_scores)
    msg = _one_line(e)
    assert "no column 'overall_score' (needed for the block score distribution)" in msg
    assert "choose one of pop_score, opportunity_score" in msg
    with pytest.raises(InputError) as e:
        block_access_changes(full, no_scores)
    assert "no column 'overall_score'" in _one_line(e)
    with pytest.raises(InputError, match="no column 'pop_low_stress'"):
        block_access_changes(load_results(_drop_block_columns(
            write_export(tmp_path / "no-low"), "pop_low_stress")), full)


def test_demo_results_refuses_unknown_keywords() -> None:
    from pna_helpers.results import demo_results

    with pytest.raises(InputError, match="unknown run parameter 'city_speed_limt' "
                                         r"\(did you mean 'city_speed_limit'\?\)"):
        demo_results(city_speed_limt=20)
    with pytest.raises(InputError, match="unknown run parameter 'colour'"):
        demo_results(name="x", colour="red")
    with pytest.raises(InputError, match="sets 'output' itself"):
        demo_results(output="/tmp/elsewhere")


@pytest.mark.aws
def test_s3_prefix(official: Path, s3_server) -> None:
    import boto3

    try:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="pna-results")
        for p in official.iterdir():
            s3.upload_file(str(p), "pna-results", f"results/job-1/{p.name}")
        res = load_results("s3://pna-results/results/job-1")
        assert res.scores()["overall_score"] == pytest.approx(85.89)
        assert len(res.blocks) == 4
        with pytest.raises(InputError, match="no results under"):
            load_results("s3://pna-results/results/job-2")
    finally:
        shutil.rmtree(official, ignore_errors=True)
