"""Downloads (pna_engine.download) against a real local HTTP server serving files in the real
formats: an OSM extract, a Geofabrik-like index, a zipped TIGER shapefile, LODES CSVs behind a
directory listing page; ``s3://`` through a local S3 emulator (moto server)."""

from __future__ import annotations

import gzip
import json
import socket
import types
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from httpfolder import _QuietHandler, closed_port_url, http_folder  # noqa: F401

from pna_engine import download, jobsdata, population
from pna_engine.errors import InputError, OfflineError
from pna_engine.params import Params

UTM = "EPSG:32635"
X0, Y0 = 385000.0, 6672000.0


def _state(tmp_path: Path, **kw) -> types.SimpleNamespace:
    kw.setdefault("country", "Finland")
    params = Params(boundary="unused", output=str(tmp_path / "out"),
                    cache_dir=str(tmp_path / "cache"), **kw)
    b = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0, X0 + 1000, Y0 + 1000)], crs=UTM)
    return types.SimpleNamespace(params=params, boundary=b, crs=b.crs, inputs={}, counts={},
                                 notes=[], blocks=None)


def _no_temp_files(folder: Path) -> bool:
    return not any(p.name.startswith(".") for p in folder.rglob("*"))


# --------------------------------------------------------------------------- generic fetch
def test_fetch_downloads_once_into_the_cache(tmp_path, http_folder, helsinki_pbf):  # noqa: F811
    root, base = http_folder
    (root / "x.osm.pbf").write_bytes(helsinki_pbf.read_bytes())
    s = _state(tmp_path)
    url = f"{base}/x.osm.pbf"
    p1 = download.fetch(url, s.params, what="OSM", option="--osm")
    assert p1.read_bytes() == helsinki_pbf.read_bytes()
    assert p1.is_relative_to(tmp_path / "cache") and p1.name == "x.osm.pbf"
    (root / "x.osm.pbf").unlink()  # served from the cache now
    n = len(_QuietHandler.requests_log)
    assert download.fetch(url, s.params) == p1
    assert len(_QuietHandler.requests_log) == n
    assert _no_temp_files(tmp_path / "cache")


def test_local_path_is_returned_as_is(tmp_path):
    f = tmp_path / "a.osm"
    f.write_text("<osm/>")
    assert download.fetch(str(f)) == f
    with pytest.raises(InputError, match="--osm"):
        download.fetch(str(tmp_path / "missing.osm"), option="--osm")


def test_http_error_is_an_input_error(tmp_path, http_folder):  # noqa: F811
    _, base = http_folder
    with pytest.raises(InputError, match="HTTP 404") as e:
        download.fetch(f"{base}/nope.zip", _state(tmp_path).params, what="blocks",
                       option="--population")
    assert "--population" in str(e.value)
    assert not isinstance(e.value, OfflineError)
    assert _no_temp_files(tmp_path / "cache")


def test_unreachable_network(tmp_path):
    url = closed_port_url() + "/x.osm.pbf"
    with pytest.raises(OfflineError, match="unreachable") as e:
        download.fetch(url, _state(tmp_path).params, what="the OSM extract", option="--osm")
    assert "--osm" in str(e.value)
    assert not any((tmp_path / "cache").rglob("*.pbf"))


def test_offline_names_the_option(tmp_path, http_folder):  # noqa: F811
    root, base = http_folder
    (root / "x.osm.pbf").write_bytes(b"data")
    s = _state(tmp_path, offline=True, osm=f"{base}/x.osm.pbf")
    with pytest.raises(OfflineError, match="--offline") as e:
        download.resolve_osm(s)
    assert "--osm" in str(e.value)
    assert _QuietHandler.requests_log == []


# --------------------------------------------------------------------------- Geofabrik
def _box_feature(fid, parent, x0, y0, x1, y1, url, iso2=None):
    props = {"id": fid, "parent": parent, "name": fid, "urls": {"pbf": url}}
    if iso2:
        props["iso3166-2"] = [iso2]
    return {"type": "Feature", "properties": props,
            "geometry": shapely.geometry.mapping(shapely.box(x0, y0, x1, y1))}


def test_geofabrik_extract_for_the_boundary(tmp_path, http_folder, monkeypatch,  # noqa: F811
                                            helsinki_pbf):
    root, base = http_folder
    (root / "europe").mkdir()
    (root / "europe" / "finland-latest.osm.pbf").write_bytes(helsinki_pbf.read_bytes())
    index = {"type": "FeatureCollection", "features": [
        _box_feature("europe", None, -30, 30, 50, 75, f"{base}/europe-latest.osm.pbf"),
        _box_feature("finland", "europe", 19, 59, 32, 71,
                     f"{base}/europe/finland-latest.osm.pbf"),
        _box_feature("estonia", "europe", 21, 57, 29, 59.9, f"{base}/europe/estonia.osm.pbf"),
        _box_feature("us/massachusetts", "north-america", -73.6, 41, -69.8, 43,
                     f"{base}/us/massachusetts-latest.osm.pbf", "US-MA"),
    ]}
    (root / "index-v1.json").write_text(json.dumps(index))
    monkeypatch.setenv("PNA_GEOFABRIK_INDEX_URL", f"{base}/index-v1.json")
    s = _state(tmp_path)
    path = download.resolve_osm(s)
    # the smallest region covering the boundary: finland (not europe, not estonia)
    assert Path(path).read_bytes() == helsinki_pbf.read_bytes()
    assert s.inputs["osm"] == path
    assert any("finland-latest.osm.pbf" in n for n in s.notes)
    # US: the state's extract, found by its ISO 3166-2 code even if not the smallest
    us = download.geofabrik_url(shapely.box(-71.1, 42.3, -71.0, 42.4), s.params, state="ma")
    assert us == f"{base}/us/massachusetts-latest.osm.pbf"
    with pytest.raises(InputError, match="--osm"):
        download.geofabrik_url(shapely.box(100, -10, 101, -9), s.params)


def test_geofabrik_offline_falls_back_to_the_pyrosm_index(tmp_path):
    pytest.importorskip("pyrosm")
    s = _state(tmp_path, offline=True)
    bnd = s.boundary.to_crs(4326).geometry.iloc[0]
    assert download.geofabrik_url(bnd, s.params).endswith("/europe/finland-latest.osm.pbf")


# --------------------------------------------------------------------------- TIGER + LODES
def _tiger_zip(path: Path) -> None:
    blocks = gpd.GeoDataFrame(
        {"GEOID20": ["250250001001000", "250250001001001", "250250001001002"],
         "POP20": [12, 30, 7], "ALAND20": [40000, 0, 40000]},
        geometry=[shapely.box(X0 + 100, Y0 + 100, X0 + 300, Y0 + 300),
                  shapely.box(X0 + 400, Y0 + 100, X0 + 600, Y0 + 300),
                  shapely.box(X0 + 5000, Y0, X0 + 5200, Y0 + 200)], crs=UTM,
    ).to_crs("EPSG:4269")
    folder = path.parent / "shp"
    folder.mkdir()
    blocks.to_file(folder / "tl_2020_25_tabblock20.shp")
    with zipfile.ZipFile(path, "w") as z:
        for p in folder.iterdir():
            z.write(p, p.name)


LODES_HEADER = "w_geocode,h_geocode,S000,SA01,SA02,SA03,SE01,SE02,SE03,SI01,SI02,SI03,createdate\n"


def _lodes(path: Path, rows: list[tuple[str, int]]) -> None:
    with gzip.open(path, "wt") as f:
        f.write(LODES_HEADER)
        for w, n in rows:
            f.write(f"{w},250250009009000,{n},0,0,0,0,0,0,0,0,0,20240101\n")


def test_us_blocks_and_latest_lodes_are_downloaded(tmp_path, http_folder,  # noqa: F811
                                                  monkeypatch):
    root, base = http_folder
    _tiger_zip(root / "tl_2020_25_tabblock20.zip")
    od = root / "ma" / "od"
    od.mkdir(parents=True)
    _lodes(od / "ma_od_main_JT00_2021.csv.gz", [("250250001001000", 100)])
    _lodes(od / "ma_od_aux_JT00_2021.csv.gz", [("250250001001000", 100)])
    _lodes(od / "ma_od_main_JT00_2022.csv.gz", [("250250001001000", 5),
                                                 ("250250001001000", 2)])
    _lodes(od / "ma_od_aux_JT00_2022.csv.gz", [("250250001001000", 1)])
    _lodes(od / "ma_od_main_JT00_2023.csv.gz", [("250250001001000", 999)])  # no aux: skipped
    monkeypatch.setenv("PNA_TIGER_BASE_URL", base)
    monkeypatch.setenv("PNA_LODES_BASE_URL", base)
    s = _state(tmp_path, country="United States", state="MA")
    s.blocks = population.load_blocks(s)
    # block 1 kept; block 2 is water (ALAND20 = 0); block 3 is outside
    assert s.blocks["geoid20"].tolist() == ["250250001001000"]
    assert s.inputs["population"].endswith("tl_2020_25_tabblock20.zip")
    jobs = jobsdata.load_jobs(s)
    # the listing page (http.server's directory index) shows 2023 main only -> 2022
    assert jobs["jobs"].tolist() == [5 + 2 + 1]
    assert s.inputs["jobs_main"].endswith("ma_od_main_JT00_2022.csv.gz")
    assert s.inputs["jobs_aux"].endswith("ma_od_aux_JT00_2022.csv.gz")
    # an explicit year skips the listing
    s.params.lodes_year = 2021
    assert download.lodes_urls(s.params) == [f"{base}/ma/od/ma_od_main_JT00_2021.csv.gz",
                                             f"{base}/ma/od/ma_od_aux_JT00_2021.csv.gz"]


def test_us_run_without_state_is_an_input_error(tmp_path):
    s = _state(tmp_path, country="United States")
    with pytest.raises(InputError, match="--state"):
        population.load_blocks(s)


# --------------------------------------------------------------------------- S3
def test_s3_uri_is_downloaded_through_the_endpoint(tmp_path, s3_server):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="inputs")
    s3.put_object(Bucket="inputs", Key="places/a.osm", Body=b"<osm version='0.6'/>")
    p = download.fetch("s3://inputs/places/a.osm", _state(tmp_path).params)
    assert p.read_bytes() == b"<osm version='0.6'/>"
    with pytest.raises(InputError, match="s3://inputs/missing"):
        download.fetch("s3://inputs/missing.osm", _state(tmp_path).params)
    assert _no_temp_files(tmp_path / "cache")


def test_interrupted_download_leaves_nothing(tmp_path):
    """A server announcing 1000 bytes and closing after 10: an error, and no cached file."""
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve_once():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        conn.close()

    t = threading.Thread(target=serve_once, daemon=True)
    t.start()
    s = _state(tmp_path)
    with pytest.raises(InputError, match="interrupted"):
        download.fetch(f"http://127.0.0.1:{port}/x.osm.pbf", s.params, option="--osm")
    t.join(5)
    srv.close()
    assert not download.cached_path(f"http://127.0.0.1:{port}/x.osm.pbf", s.params).exists()
    assert _no_temp_files(tmp_path / "cache")


# --------------------------------------------------------------------------- default speeds
def _speed_tables(root: Path) -> None:
    # the PeopleForBikes tables' layout (§2.7): codes as plain integers, speeds in mph
    (root / "state_fips_speed.csv").write_text(
        "state,fips_code_state,speed\nAlabama,1,30\nMassachusetts,25,25\nWyoming,56,30\n")
    (root / "city_fips_speed.csv").write_text(
        "city,state,fips_code_city,speed\nBoston,MA,2507000,25\nJackson,WY,5640120,25\n")


def test_us_default_speeds_are_looked_up_like_the_reference(tmp_path, http_folder,  # noqa: F811
                                                             monkeypatch):
    from pna_engine import speeds

    root, base = http_folder
    _speed_tables(root)
    monkeypatch.setenv("PNA_SPEED_LIMITS_BASE_URL", base)
    params = Params(boundary="b", output="o", country="US", state="MA", city_fips="2507000",
                    cache_dir=str(tmp_path / "cache"))
    notes: list[str] = []
    row = speeds.residential_speeds(params, lookup=True, notes=notes).iloc[0]
    assert (row["state_fips_code"], row["state_speed"]) == ("25", 25)
    assert (row["city_fips_code"], row["city_speed"]) == ("2507000", 25)
    assert notes == []
    # a value on the command line wins and its table is not even asked for
    _QuietHandler.requests_log.clear()
    params2 = Params(boundary="b", output="o", country="US", state_fips="56",
                     city_fips="5600001", state_speed_limit=35, cache_dir=str(tmp_path / "c2"))
    row = speeds.residential_speeds(params2, lookup=True, notes=notes).iloc[0]
    assert row["state_speed"] == 35 and pd_isna(row["city_speed"])
    assert _QuietHandler.requests_log == ["/city_fips_speed.csv"]
    assert notes == ["city_fips_speed.csv has no default speed for FIPS 5600001"]
    assert speeds.residential_default(speeds.residential_speeds(params2)) == 35


def test_default_speed_lookup_offline_or_unreachable_is_a_note(tmp_path):
    from pna_engine import speeds

    for offline in (True, False):  # --offline, or nothing listening (conftest's closed port)
        notes: list[str] = []
        params = Params(boundary="b", output="o", country="US", state="MA", offline=offline,
                        cache_dir=str(tmp_path / f"cache{offline}"))
        row = speeds.residential_speeds(params, lookup=True, notes=notes).iloc[0]
        assert pd_isna(row["state_speed"]) and pd_isna(row["city_speed"])
        assert len(notes) == 1 and "pass --state-speed-limit MPH" in notes[0], notes


def pd_isna(v) -> bool:
    import pandas as pd

    return bool(pd.isna(v))
