"""Analysis requests (validation naming the bad field, places CSV / GeoPackage) and settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pna_engine.errors import InputError
from pna_helpers import jobs
from pna_helpers.config import Settings


def test_request_normalises_and_becomes_params(boundary):
    r = jobs.AnalysisRequest(place=" Springfield ", boundary=str(boundary), state="ma",
                             state_fips="25", city_fips="2512345", city_speed_limit="25",
                             jobs=["s3://b/lodes/ma_od_main_JT00_2019.csv.gz"],
                             osm="https://example.org/x.osm.pbf", workers="2", lodes_year=2019,
                             offline="no")
    assert r.place == "Springfield" and r.state == "MA" and r.state_fips == "25"
    assert r.city_speed_limit == 25 and r.slug == "springfield" and r.offline is False
    assert r.boundary == str(boundary.resolve()) and r.workers == 2
    back = jobs.AnalysisRequest.from_dict(json.loads(r.to_json()))
    assert back == r
    # the request becomes the engine's parameters directly, no argv round trip
    p = r.to_params("/out")
    assert p.city_speed_limit == 25 and p.jobs == r.jobs and p.max_trip_distance == 2680.0
    assert (p.workers, p.lodes_year, p.output) == (2, 2019, "/out")
    assert p.place == "Springfield"  # recorded in run.json: reports name the place
    from pna_engine.jobrunner import request_params

    assert request_params(json.loads(r.to_json()), "/out") == p


@pytest.mark.parametrize("field,value,needle", [
    ("place", "  ", "'place'"),
    ("boundary", "/no/such/file.shp", "'boundary': file /no/such/file.shp does not exist"),
    ("osm", "ftp://x/y.pbf", "'osm': has an unsupported URL scheme"),
    ("population", "s3://bucket-only", "'population': is a bad S3 URI"),
    ("state", "Mass", "'state'"),
    ("state_fips", "6a", "'state_fips'"),
    ("city_fips", "123456789", "'city_fips'"),
    ("city_speed_limit", 500, "'city_speed_limit'"),
    ("state_speed_limit", "fast", "'state_speed_limit'"),
    ("max_trip_distance", -1, "'max_trip_distance'"),
])
def test_bad_field_is_named(boundary, field, value, needle):
    kw = {"place": "P", "boundary": str(boundary), field: value}
    with pytest.raises(InputError, match=needle.replace("(", r"\(")):
        jobs.AnalysisRequest(**kw)


def test_input_that_is_a_folder_or_empty_is_refused_at_submission(tmp_path, boundary):
    """Every input is one file: a folder or a 0-byte file is refused when the request is made
    (seen by hand: `pna submit --boundary FOLDER` was accepted and failed only in the job)."""
    (tmp_path / "empty.osm.pbf").write_bytes(b"")
    for field, value, needle in (
            ("boundary", str(tmp_path), f"'boundary': {tmp_path} is a folder, not a file"),
            ("osm", str(tmp_path / "empty.osm.pbf"),
             f"'osm': file {tmp_path / 'empty.osm.pbf'} is empty (0 bytes)")):
        kw = {"place": "P", "boundary": str(boundary), field: value}
        with pytest.raises(InputError) as ei:
            jobs.AnalysisRequest(**kw)
        assert needle in str(ei.value) and "\n" not in str(ei.value)
    (tmp_path / "sub").mkdir()
    csv = tmp_path / "places.csv"
    csv.write_text("place,boundary\nA,city.geojson\nB,sub\n")
    with pytest.raises(InputError, match=r"places file .*, row 3, column 'boundary': .*/sub is "
                                         r"a folder, not a file; give the file in it; fix the "
                                         r"path in that cell"):
        jobs.read_places(csv)


def test_place_name_with_a_line_break_is_refused(tmp_path, boundary):
    """A place name is a line of job logs (a newline forged a second log line), tables and
    report headings: a line break or control character is refused, naming it."""
    for name, char in (("Evil\nline", "\n"), ("Tab\there", "\t"), ("Bell\x07", "\x07"),
                       ("C1\x85end", "\x85")):
        with pytest.raises(InputError) as ei:
            jobs.AnalysisRequest(place=name, boundary=str(boundary))
        assert str(ei.value) == (f"request field 'place': must be one line of text, without "
                                 f"the {char!r} in {name!r} (a line break or control "
                                 "character)")
    ok = jobs.AnalysisRequest(place='<b>"Köln" & São Paulo</b>', boundary=str(boundary))
    assert ok.place == '<b>"Köln" & São Paulo</b>'
    csv = tmp_path / "places.csv"
    csv.write_text('place,boundary\n"Two\nlines",city.geojson\n')
    with pytest.raises(InputError) as ei:
        jobs.read_places(csv)
    assert str(ei.value) == (f"places file {csv}, row 2, column 'place': must be one line of "
                             "text, without the '\\n' in 'Two\\nlines' (a line break or "
                             "control character)")


def test_places_csv_blank_rows_are_skipped(tmp_path, boundary):
    """A spreadsheet's empty rows (',,,') and blank lines are not places (a ',,' row was
    `row 3, column 'place': the place name is empty`)."""
    csv = tmp_path / "places.csv"
    csv.write_bytes(b"\xef\xbb\xbfplace,boundary,country\r\nA,city.geojson,Finland\r\n,,\r\n"
                    b"\r\nB,city.geojson,Finland\r\n,,\r\n")
    assert [r.place for r in jobs.read_places(csv)] == ["A", "B"]
    csv.write_text("place,boundary\n,\n\n")
    with pytest.raises(InputError, match="has no rows: add one row per place"):
        jobs.read_places(csv)


def test_read_places_csv(tmp_path, boundary):
    (tmp_path / "sub").mkdir()
    other = tmp_path / "sub" / "b2.geojson"
    other.write_text(boundary.read_text())
    csv = tmp_path / "places.csv"
    csv.write_text("place,boundary,country,city_speed_limit,jobs\n"
                   "Alpha,city.geojson,Finland,30,\n"
                   "Beta,sub/b2.geojson,United States,,s3://b/j1.csv;s3://b/j2.csv\n")
    reqs = jobs.read_places(csv)
    assert [r.place for r in reqs] == ["Alpha", "Beta"]
    assert reqs[0].boundary == str(boundary.resolve()) and reqs[0].city_speed_limit == 30
    assert reqs[1].boundary == str(other.resolve()) and reqs[1].jobs == ["s3://b/j1.csv",
                                                                         "s3://b/j2.csv"]


@pytest.mark.parametrize("text,needle", [
    ("name,boundary\nA,city.geojson\n", "{csv} lacks column(s) place: the header must name "),
    ("place;boundary\nA;city.geojson\n", "{csv} lacks column(s) place, boundary: it looks "
                                          "separated by ';': save it with commas"),
    ("place,boundary,colour\nA,city.geojson,red\n", "{csv} has unknown column(s) colour: "
                                                     "rename or remove them"),
    ("place,boundary\n", "{csv} has no rows: add one row per place"),
    ("", "{csv} is empty: give a header row"),
    ("place,boundary\nA,city.geojson\nB,missing.geojson\n",
     "places file {csv}, row 3, column 'boundary': file {dir}/missing.geojson does not exist; "
     "fix the path in that cell (a relative path is relative to the folder of places.csv"),
    ("place,boundary,city_speed_limit\nA,city.geojson,fast\n",
     "places file {csv}, row 2, column 'city_speed_limit': must be a speed in mph (1-199), got "
     "'fast'; fix that cell, or leave it empty for the default"),
    ("place,boundary\nA,city.geojson\n ,city.geojson\n",
     "places file {csv}, row 3, column 'place': the place name is empty; give every row a "
     "place name"),
    ("place,boundary,jobs\nA,city.geojson,s3://b/j.csv;nope.csv\n",
     "places file {csv}, row 2, column 'jobs': file {dir}/nope.csv does not exist"),
    ('place,boundary\n"A,city.geojson\n', "{csv} is malformed"),
    # a first row with a cell too many: its first cell became the index (place=city.geojson,
    # boundary='extra' - 'file extra does not exist')
    ("place,boundary\nA,city.geojson,extra\n", "{csv} is malformed (Length of header"),
    ("place,boundary\n\nA,city.geojson\n,\n\nB,missing.geojson\n",
     "places file {csv}, row 6, column 'boundary': file {dir}/missing.geojson does not exist"),
])
def test_malformed_places_csv_one_line(tmp_path, boundary, text, needle):
    """Every message names the file, the row and the column, and says what to do."""
    csv = tmp_path / "places.csv"
    csv.write_text(text)
    with pytest.raises(InputError) as ei:
        jobs.read_places(csv)
    msg = str(ei.value)
    assert needle.format(csv=csv, dir=tmp_path) in msg and "\n" not in msg


def test_places_file_that_is_not_utf8_or_not_a_places_file(tmp_path):
    bad = tmp_path / "places.csv"
    bad.write_bytes("place,boundary\nK\xf6ln,city.geojson\n".encode("latin-1"))
    with pytest.raises(InputError, match=f"^places CSV {bad} is not UTF-8 text .*: save it as "
                                         "CSV UTF-8$"):
        jobs.read_places(bad)
    with pytest.raises(InputError, match="expected a .csv .* not .xlsx"):
        jobs.read_places(bad.rename(tmp_path / "places.xlsx"))
    with pytest.raises(InputError, match="is a folder: give the .csv or .gpkg file in it"):
        jobs.read_places(tmp_path)


def test_bad_feature_of_a_places_geopackage_is_named(tmp_path):
    gpd = pytest.importorskip("geopandas")
    from shapely.geometry import Point, box

    path = tmp_path / "places.gpkg"
    gpd.GeoDataFrame({"name": ["North", "South"], "city_speed_limit": [30, 500]},
                     geometry=[box(24.9, 60.15, 25.0, 60.2), box(24.9, 60.1, 25.0, 60.15)],
                     crs=4326).to_file(path, driver="GPKG")
    with pytest.raises(InputError) as ei:
        jobs.read_places(path)
    assert str(ei.value).startswith(f"places file {path}, feature 2 (South), column "
                                    "'city_speed_limit': ")
    assert str(ei.value).endswith("; fix that cell, or leave it empty for the default")
    gpd.GeoDataFrame({"name": ["North", "Dot"]},
                     geometry=[box(24.9, 60.15, 25.0, 60.2), Point(24.9, 60.1)],
                     crs=4326).to_file(path, driver="GPKG")
    with pytest.raises(InputError, match=r"feature 2 \(Dot\), column 'geometry': Point, not a "
                                         "polygon; give every place a polygon boundary"):
        jobs.read_places(path)
    gpd.GeoDataFrame({"town": ["North"]}, geometry=[box(24.9, 60.15, 25.0, 60.2)],
                     crs=4326).to_file(path, driver="GPKG")
    with pytest.raises(InputError, match="has no column 'place' \\(or 'name'\\): add one with "
                                         "each place's name; its columns are town"):
        jobs.read_places(path)


def test_read_places_geopackage_writes_boundaries(tmp_path):
    gpd = pytest.importorskip("geopandas")
    from shapely.geometry import box

    gdf = gpd.GeoDataFrame({"name": ["North", "South"], "country": ["Finland", "Finland"],
                            "city_speed_limit": [30, 40]},
                           geometry=[box(24.9, 60.15, 25.0, 60.2), box(24.9, 60.1, 25.0, 60.15)],
                           crs=4326)
    path = tmp_path / "places.gpkg"
    gdf.to_file(path, driver="GPKG")
    reqs = jobs.read_places(path)
    assert [r.place for r in reqs] == ["North", "South"]
    assert reqs[1].city_speed_limit == 40
    b = gpd.read_file(reqs[0].boundary)
    assert b.crs.to_epsg() == 4326
    assert b.geometry.iloc[0].equals(gdf.geometry.iloc[0])


def test_geopackage_with_several_layers(tmp_path):
    """A GeoPackage with a polygon layer of places and other layers is read from that layer,
    without GDAL's warning on stderr; with two polygon layers it is one error line naming them
    (reading the first, as before, silently dropped the places of the second)."""
    gpd = pytest.importorskip("geopandas")
    from shapely.geometry import Point, box

    path = tmp_path / "places.gpkg"
    gpd.GeoDataFrame({"name": ["Dot"]}, geometry=[Point(24.9, 60.1)], crs=4326).to_file(
        path, layer="notes", driver="GPKG")
    gpd.GeoDataFrame({"name": ["North"]}, geometry=[box(24.9, 60.15, 25.0, 60.2)],
                     crs=4326).to_file(path, layer="places", driver="GPKG")
    env = dict(os.environ, PNA_OUTPUTS=str(tmp_path / "out"), PYTHONWARNINGS="default")
    r = subprocess.run([sys.executable, "-m", "pna_helpers.cli", "campaign", "estimate",
                        str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("North ")
    assert [q.place for q in jobs.read_places(path)] == ["North"]
    gpd.GeoDataFrame({"name": ["South"]}, geometry=[box(24.9, 60.1, 25.0, 60.15)],
                     crs=4326).to_file(path, layer="more", driver="GPKG")
    r = subprocess.run([sys.executable, "-m", "pna_helpers.cli", "submit-many", str(path)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"pna: error: places file {path} has 2 polygon layers (places, more): "
                        "which holds the places is unclear; keep one polygon layer of places "
                        "(e.g. save that layer as its own file)\n")


def test_settings_env_config_and_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "pna.toml"
    cfg.write_text('[pna]\nbackend = "aws"\njob_queue = "from-file"\nmax_vcpus = 16\n'
                   'instance_types = ["m6id"]\n')
    monkeypatch.setenv("PNA_CONFIG", str(cfg))
    monkeypatch.setenv("PNA_JOB_QUEUE", "from-env")
    monkeypatch.setenv("PNA_SUBNETS", "subnet-1, subnet-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    s = Settings.load(job_definition="override")
    assert (s.backend, s.job_queue, s.max_vcpus, s.job_definition) == ("aws", "from-env", 16,
                                                                       "override")
    assert s.subnets == ["subnet-1", "subnet-2"] and s.instance_types == ["m6id"]
    assert s.endpoint_url == "http://127.0.0.1:1"
    monkeypatch.setenv("PNA_BACKEND", "cloud")
    with pytest.raises(InputError, match="PNA_BACKEND must be one of local, aws"):
        Settings.load()
    monkeypatch.delenv("PNA_BACKEND")
    cfg.write_text('aws_secret_access_key = "x"\n')
    with pytest.raises(InputError, match="do not put credentials"):
        Settings.load()
    monkeypatch.setenv("PNA_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(InputError, match="not found"):
        Settings.load()
    monkeypatch.setenv("PNA_CONFIG", str(tmp_path))
    with pytest.raises(InputError, match="is a folder: give the TOML file itself"):
        Settings.load()


def test_default_backend_is_local(monkeypatch, tmp_path):
    for k in ("PNA_BACKEND", "PNA_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    c = jobs.get_client()
    assert c.backend == "local"
    assert c.store.path.parent == Settings.load().outputs
