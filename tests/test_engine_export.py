"""The export (BNA-METHOD §12): file set, names, columns, CRS and CSV formatting, on a small
hand-built run state. Files are read back with geopandas / pandas / json."""

from __future__ import annotations

import gzip
import json
import types

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from pna_engine import destinations, export
from pna_engine.params import Params

UTM = "EPSG:32635"
X0, Y0 = 385000.0, 6672000.0

#: §12.1: the files of a bsa run.
EXPECTED_FILES = (
    {f"neighborhood_{t}.{e}" for t in ("census_blocks", "ways")
     for e in ("shp", "shx", "dbf", "prj", "cpg")}
    | {f"neighborhood_{t}.geojson" for t in (
        "boundary", "census_blocks", "colleges", "community_centers", "dentists", "doctors",
        "hospitals", "parks", "pharmacies", "retail", "schools", "social_services",
        "supermarkets", "transit", "universities", "ways", "ways_intersections")}
    | {"neighborhood_connected_census_blocks.csv", "neighborhood_overall_scores.csv",
       "neighborhood_score_inputs.csv", "residential_speed_limit.csv", "mileage.csv"}
)


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


@pytest.fixture(autouse=True)
def _other_tests_threads_allow_the_fork(monkeypatch):
    """Threads left by other test modules' servers (idle daemon handlers) take no lock the
    export child needs: they must not stop these tests from forking it."""
    import threading

    for t in threading.enumerate():
        if t is not threading.current_thread():
            monkeypatch.setattr(t, "fork_safe", True, raising=False)


def make_state(tmp_path):
    params = Params(boundary="b", output=str(tmp_path / "out"))
    boundary = gpd.GeoDataFrame({"NAME": ["Testville"]}, geometry=[box(0, 0, 2000, 1000)],
                                crs=UTM)
    blocks = gpd.GeoDataFrame(
        {"gid": [7, 9], "geoid20": ["250250001001000", "250250001001001"],
         "pop20": [80.0, 0.0], "aland20": [1e6, 1e6],
         "road_ids": [[3, 1, 2], []],
         "pop_low_stress": pd.array([60, None], dtype="Int64"),
         "pop_high_stress": pd.array([80, None], dtype="Int64"),
         "pop_score": [0.75, np.nan],
         "overall_score": [42.5, np.nan],
         "reachable_blocks": pd.array([1, 0], dtype="Int64")},
        geometry=[shapely.MultiPolygon([box(0, 0, 1000, 1000)]),
                  shapely.MultiPolygon([box(1000, 0, 2000, 1000)])], crs=UTM)
    pts = gpd.GeoDataFrame(
        {"osm_id": [11, 12], "amenity": ["school", "school"], "name": ["In", "Out"]},
        geometry=[shapely.Point(X0 + 500, Y0 + 500), shapely.Point(X0 + 9000, Y0 + 500)],
        crs=UTM)
    polys = gpd.GeoDataFrame({"osm_id": [21], "shop": ["books"]},
                             geometry=[box(1200, 200, 1300, 300)], crs=UTM)
    s = types.SimpleNamespace(params=params, crs=UTM, counts={}, boundary=boundary,
                              blocks=blocks, osm=types.SimpleNamespace(points=pts, polygons=polys))
    s.destinations = destinations.build_destinations(s)
    s.ways = gpd.GeoDataFrame(
        {"road_id": [1, 2], "osm_id": [100, 200], "name": ["Main St", None],
         "intersection_from": [1, 2], "intersection_to": [2, 3],
         "functional_class": ["residential", "path"], "speed_limit": [25.0, np.nan],
         "ft_seg_stress": [1, 3], "tf_seg_stress": [1, 3], "internal": ["x", "y"]},
        geometry=[shapely.LineString([(X0, Y0), (X0 + 100, Y0)]),
                  shapely.LineString([(X0 + 100, Y0), (X0 + 100, Y0 + 100)])], crs=UTM)
    s.intersections = gpd.GeoDataFrame(
        {"int_id": [1, 2, 3], "osm_id": [5, 6, 7], "legs": [1, 2, 1],
         "signalized": [False, True, False], "stops": [False] * 3, "rrfb": [False] * 3,
         "island": [False] * 3},
        geometry=shapely.points([(X0, Y0), (X0 + 100, Y0), (X0 + 100, Y0 + 100)]), crs=UTM)
    s.connectivity = types.SimpleNamespace(
        source=np.array([0, 0, 1], dtype=np.int32), target=np.array([0, 1, 0], dtype=np.int32),
        low_stress=np.array([True, False, True]),
        low_cost=np.array([0, -1, 12], dtype=np.int32),
        high_cost=np.array([0, 213, 10], dtype=np.int32))
    s.scores = types.SimpleNamespace(
        overall_scores=pd.DataFrame({
            "id": [1, 2], "score_id": ["people", "population_total"],
            "score_original": [0.943851, 780.0], "score_normalized": [94.3851, np.nan],
            "human_explanation": ["On average, blocks, got this.", None]}),
        score_inputs=pd.DataFrame({
            "id": [1], "category": ["People"], "score_name": ["Median"], "score": [0.93565],
            "notes": ["n"], "human_explanation": ["h"], "use_pop": [True], "use_emp": [None]}),
        mileage=pd.DataFrame({"feature_type": ["lane"], "total_mileage": [0.040869962812479045]}))
    s.speeds = pd.DataFrame({"state_fips_code": ["0 "], "city_fips_code": ["0      "],
                             "state_speed": pd.array([None], dtype="Int64"),
                             "city_speed": pd.array([30], dtype="Int64")})
    s.staging = tmp_path / "staging"
    return s


@pytest.fixture
def exported(tmp_path):
    s = make_state(tmp_path)
    export.write_export(s)
    return s, s.staging


def test_file_set_is_the_reference_one(exported):
    s, out = exported
    assert {p.name for p in out.iterdir()} == EXPECTED_FILES
    assert s.counts["export_files"] == len(EXPECTED_FILES) - 8  # shapefile parts count once


def test_geojson_files_are_wgs84_with_reference_columns(exported):
    _, out = exported
    for f in out.glob("*.geojson"):
        gdf = gpd.read_file(f)
        assert gdf.crs.to_epsg() == 4326, f
    ways = gpd.read_file(out / "neighborhood_ways.geojson")
    assert list(ways.columns[:-1]) == list(export.WAYS_COLUMNS)  # no internal column
    raw = json.loads((out / "neighborhood_ways.geojson").read_text())
    props = [f["properties"] for f in raw["features"]]
    assert props[0]["speed_limit"] == 25 and isinstance(props[0]["speed_limit"], int)
    assert props[1]["speed_limit"] is None and props[1]["name"] is None
    assert raw["crs"]["properties"]["name"] == "urn:ogc:def:crs:OGC:1.3:CRS84"
    x, y = raw["features"][0]["geometry"]["coordinates"][0]
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(X0, Y0)
    assert (x, y) == pytest.approx((lon, lat), abs=1e-9)

    inter = json.loads((out / "neighborhood_ways_intersections.geojson").read_text())
    assert list(inter["features"][1]["properties"]) == list(export.INTERSECTION_COLUMNS)
    assert inter["features"][1]["properties"]["signalized"] is True

    bnd = json.loads((out / "neighborhood_boundary.geojson").read_text())["features"]
    assert bnd[0]["properties"] == {"gid": 1, "name": "Testville"}
    assert bnd[0]["geometry"]["type"] == "MultiPolygon"


def test_destination_geojson_points_and_empty_arrays(exported):
    _, out = exported
    raw = json.loads((out / "neighborhood_schools.geojson").read_text())["features"]
    assert [f["geometry"]["type"] for f in raw] == ["Point", "Point"]
    assert raw[0]["properties"]["blockid20"] == ["250250001001000"]
    assert raw[0]["properties"]["school_name"] == "In" and raw[0]["properties"]["osm_id"] == 11
    assert "blockid20" not in raw[1]["properties"]  # empty array: left out like GDAL does
    assert list(raw[1]["properties"]) == ["id", "osm_id", "school_name", "pop_low_stress",
                                          "pop_high_stress", "pop_score"]
    retail = json.loads((out / "neighborhood_retail.geojson").read_text())["features"]
    assert list(retail[0]["properties"]) == ["id", "blockid20", "pop_low_stress",
                                             "pop_high_stress", "pop_score"]
    empty = gpd.read_file(out / "neighborhood_colleges.geojson")
    assert len(empty) == 0


def test_census_blocks_geojson_and_shapefile(exported):
    _, out = exported
    raw = json.loads((out / "neighborhood_census_blocks.geojson").read_text())["features"]
    p0 = raw[0]["properties"]
    assert list(p0)[:5] == ["gid", "geoid20", "pop20", "aland20", "road_ids"]
    assert p0["gid"] == 7 and p0["road_ids"] == [3, 1, 2] and p0["pop_low_stress"] == 60
    assert p0["emp_low_stress"] is None  # absent analysis columns are NULL
    assert "road_ids" not in raw[1]["properties"]
    cols = list(export.BLOCK_SCORE_COLUMNS)
    assert list(p0)[4:] == cols

    shp = gpd.read_file(out / "neighborhood_census_blocks.shp")
    assert shp.crs.to_epsg() == 32635  # shapefiles stay in the output CRS
    names = export.shapefile_names(["geoid20", "pop20", "aland20", *cols])
    assert list(shp.columns[:-1]) == names
    # the reference's truncation: 10 characters, duplicates -> first 7 + _01, _02
    assert {"POP_LOW_ST", "UNIVERSITI", "UNIVERS_01", "UNIVERS_02", "SOCIAL__01"} <= set(names)
    assert shp.loc[0, "ROAD_IDS"] == "{3,1,2}"
    assert shp.loc[0, "GEOID20"] == "250250001001000"
    ways = gpd.read_file(out / "neighborhood_ways.shp")
    assert {"INTERSECTI", "INTERSE_01", "FT_BIKE_IN", "FT_BIKE_01"} <= set(ways.columns)


def test_csv_formatting(exported):
    _, out = exported
    pairs = (out / "neighborhood_connected_census_blocks.csv").read_text().splitlines()
    assert pairs == [",".join(export.PAIRS_COLUMNS),
                     "250250001001000,250250001001000,t,0,t,0",
                     "250250001001000,250250001001001,f,,t,213",
                     "250250001001001,250250001001000,t,12,t,10"]
    overall = (out / "neighborhood_overall_scores.csv").read_text().splitlines()
    assert overall[1] == '1,people,0.9439,94.3851,"On average, blocks, got this."'
    assert overall[2] == "2,population_total,780.0000,,"
    inputs = (out / "neighborhood_score_inputs.csv").read_text().splitlines()
    assert inputs[0].split(",") == list(export.SCORE_INPUT_COLUMNS)
    assert inputs[1].startswith("1,People,Median,0.9357,n,h,t,,")
    assert (out / "mileage.csv").read_text() == "feature_type,total_mileage\nlane,0.040869962812479045\n"
    assert (out / "residential_speed_limit.csv").read_text().splitlines()[1] == "0 ,0      ,,30"


def test_big_pairs_are_streamed_and_gzipped(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "PAIRS_CHUNK", 2)
    monkeypatch.setattr(export, "PAIRS_GZIP_ROWS", 4)
    n = 5
    geoids = np.array([f"{i:015d}" for i in range(3)], dtype=object)
    src = np.array([0, 0, 1, 2, 2])
    dst = np.array([1, 2, 0, 0, 1])
    p = export.write_pairs_csv(tmp_path / "neighborhood_connected_census_blocks.csv", geoids,
                               src, dst, np.array([1, 0, 1, 0, 0], bool),
                               np.array([5, -1, 7, -1, -1]), np.ones(n, bool),
                               np.array([5, 9, 7, 8, 11]))
    assert p.name == "neighborhood_connected_census_blocks.csv.gz"
    with gzip.open(p, "rt") as f:
        df = pd.read_csv(f, dtype={"source_blockid20": str, "target_blockid20": str})
    assert len(df) == n and df["high_stress_cost"].tolist() == [5, 9, 7, 8, 11]
    assert df["low_stress_cost"].isna().tolist() == [False, True, False, True, True]
    assert df["source_blockid20"].tolist() == [geoids[i] for i in src]
    assert not any(x.name.startswith(".") for x in tmp_path.iterdir())


def test_missing_tables_are_skipped(tmp_path):
    s = make_state(tmp_path)
    s.connectivity = None
    s.scores = None
    s.ways = None
    export.write_export(s)
    names = {p.name for p in s.staging.iterdir()}
    assert "neighborhood_connected_census_blocks.csv" not in names
    assert "mileage.csv" not in names and "neighborhood_ways.geojson" not in names
    assert "neighborhood_census_blocks.geojson" in names


def test_boundary_attributes_are_read_back_from_a_single_feature_source(tmp_path):
    s = make_state(tmp_path)
    src = tmp_path / "place.geojson"
    s.boundary.to_crs(4326).to_file(src, driver="GeoJSON")  # NAME = Testville
    s.boundary = s.boundary[["geometry"]].copy()  # the import keeps only the geometry
    s.boundary.attrs["source"] = str(src)
    export.write_export(s)
    raw = json.loads((s.staging / "neighborhood_boundary.geojson").read_text())["features"]
    assert raw[0]["properties"] == {"gid": 1, "name": "Testville"}


# --------------------------------------------------------------------------- vectorised writers
def _geojson_by_feature(path, table, columns, geometry):
    """The GeoJSON text written feature by feature with ``json.dumps`` (GDAL's layout: one
    feature per line, NULL/NaN/inf as null, numpy values as Python ones, float columns of
    integer fields as ints, empty arrays left out)."""
    geoms = geometry.to_crs(4326)
    feats = []
    for i in range(len(table)):
        props = {}
        for c in columns:
            v = table[c].iloc[i] if c in table.columns else None
            if isinstance(v, tuple | np.ndarray):
                v = list(v)
            if isinstance(v, list):
                v = [x.item() if isinstance(x, np.generic) else x for x in v]
                if not v:
                    continue
            elif v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
                v = None
            elif isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and c in export.INTEGER_COLUMNS:
                v = round(v)
            if isinstance(v, float) and not np.isfinite(v):
                v = None
            props[c] = v
        g = geoms.iloc[i]
        gj = "null" if g is None else shapely.to_geojson(g)
        feats.append('{ "type": "Feature", "properties": '
                     + json.dumps(props, ensure_ascii=False) + ', "geometry": ' + gj + " }")
    head = json.dumps({"type": "FeatureCollection", "name": path.stem,
                       "crs": {"type": "name",
                               "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}},
                      ensure_ascii=False)
    return head[:-1] + ',\n"features": [\n' + "".join(
        f + (",\n" if i < len(feats) - 1 else "\n") for i, f in enumerate(feats)) + "]\n}\n"


def test_geojson_text_is_the_feature_by_feature_json(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "GEOJSON_CHUNK", 3)  # several chunks
    n = 8
    rng = np.random.default_rng(3)
    floats = rng.normal(size=n) * 10.0 ** rng.integers(-8, 20, n)
    floats[:6] = [-0.0, np.nan, np.inf, 1e16, 1.5e-05, 2.0]
    table = pd.DataFrame({
        "road_ids": [[], [3, 1], (np.int64(7),), np.array([], dtype=int), [], [2], [1, 2, 3],
                     []],  # a list column first: the first property may be left out
        "name": ["a \"quoted\" name", None, "Åsa\tkatu \u2028", "", "x" * 70, "ü", None, "z"],
        "tdg_id": pd.array(["u", None, "w", "x", "y", "z", "v", "q"], dtype="str"),
        "speed_limit": [25.0, np.nan, 30.4, 30.5, 31.5, 0.0, 7.0, np.nan],  # integer field
        "score": floats,
        "legs": pd.array([1, None, 3, 4, 5, 6, 7, 8], dtype="Int64"),
        "osm_id": np.arange(n, dtype=np.int64) * 10**12,
        "signalized": [True, False] * 4,
        "stops": pd.array([True, None, False, True, True, False, None, True], dtype="boolean"),
        "blockid20": [["250250001001000"], [], ["1", "2"], [], ["é"], [], [], ["3"]],
        "mixed": [1, "a", None, 2.5, np.int64(4), [1, None], np.nan, {"k": "v"}],
        "same": [0.25] * n,  # repeated values are formatted once
    })
    cols = [*table.columns[:-1], "absent", "same"]
    geometry = gpd.GeoSeries(
        [shapely.Point(X0 + i, Y0 + 2 * i) if i != 4 else None for i in range(n)], crs=UTM)
    path = tmp_path / "t.geojson"
    export.write_geojson(path, table, cols, geometry)
    assert path.read_text(encoding="utf-8") == _geojson_by_feature(path, table, cols, geometry)
    raw = json.loads(path.read_text(encoding="utf-8"))["features"]
    assert list(raw[0]["properties"])[0] == "name" and raw[1]["properties"]["road_ids"] == [3, 1]
    assert raw[0]["properties"]["speed_limit"] == 25 and raw[2]["properties"]["speed_limit"] == 30

    empty = tmp_path / "empty.geojson"
    export.write_geojson(empty, table.iloc[:0], cols, geometry.iloc[:0])
    assert empty.read_text() == _geojson_by_feature(empty, table.iloc[:0], cols,
                                                    geometry.iloc[:0])


def _pairs_by_row(geoids, src, dst, low, low_cost, high, high_cost):
    """The pairs CSV as PostgreSQL's COPY writes it, row by row."""
    def cost(c):
        return "" if (isinstance(c, float) and np.isnan(c)) or c < 0 else str(int(c))
    rows = [",".join(export.PAIRS_COLUMNS)]
    for i in range(len(src)):
        rows.append(f"{geoids[src[i]]},{geoids[dst[i]]},{'t' if low[i] else 'f'},"
                    f"{cost(low_cost[i])},{'t' if high[i] else 'f'},{cost(high_cost[i])}")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("table_max", [1 << 20, 50])  # costs from the table / per chunk
def test_pairs_csv_is_the_row_by_row_text(tmp_path, monkeypatch, table_max):
    monkeypatch.setattr(export, "PAIRS_CHUNK", 7)
    monkeypatch.setattr(export, "COST_TABLE_MAX", table_max)
    rng = np.random.default_rng(5)
    n = 40
    geoids = np.array(["250250001001000", "9", "0899990000010320", "x1"], dtype=object)
    src, dst = rng.integers(0, 4, n).astype(np.int32), rng.integers(0, 4, n)
    low, high = rng.random(n) < 0.5, rng.random(n) < 0.8
    low_cost = np.where(low, rng.integers(0, 3000, n), -1).astype(np.int32)
    high_cost = rng.integers(0, 120_000, n).astype(float)
    high_cost[[0, 5]] = np.nan
    low_cost[3] = 17  # a cost with a false flag is still printed
    p = export.write_pairs_csv(tmp_path / "pairs.csv", geoids, src, dst, low, low_cost, high,
                               high_cost)
    assert p.read_text() == _pairs_by_row(geoids, src, dst, low, low_cost, high, high_cost)
    assert not any(x.name.startswith(".") for x in tmp_path.iterdir())
    none = export.write_pairs_csv(tmp_path / "none.csv", geoids, *(np.zeros(0, int),) * 6)
    assert none.read_text() == ",".join(export.PAIRS_COLUMNS) + "\n"


def test_files_are_the_same_shared_with_a_child_process_or_not(tmp_path, monkeypatch):
    files = {}
    for in_child in (True, False):
        monkeypatch.setattr(export, "EXPORT_IN_CHILD", in_child)
        s = make_state(tmp_path / str(in_child))
        s.blocks.loc[0, "geoid20"] = "é" * 200  # 400 bytes: cut to 254 like GDAL
        export.write_export(s)
        files[in_child] = {p.name: p.read_bytes() for p in s.staging.iterdir()}
    assert files[True] == files[False]
    shp = gpd.read_file(tmp_path / "True" / "staging" / "neighborhood_census_blocks.shp")
    assert shp.loc[0, "GEOID20"] == "é" * 127


def test_no_fork_while_another_thread_runs(tmp_path, monkeypatch):
    # a fork copies only the calling thread: a lock held by another one (a Jupyter kernel's
    # I/O threads) would never be released in the child
    import threading

    forks = []
    real_child = export._Child

    def child(*args):
        forks.append(args)
        return real_child(*args)

    monkeypatch.setattr(export, "EXPORT_IN_CHILD", True)
    monkeypatch.setattr(export, "_Child", child)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        s = make_state(tmp_path / "threads")
        export.write_export(s)
    finally:
        release.set()
        other.join()
    assert len(forks) == 0
    alone = make_state(tmp_path / "alone")  # the only thread again: the child shares the work
    export.write_export(alone)
    assert len(forks) == 1
    sampler = threading.Thread(target=(done := threading.Event()).wait)
    sampler.fork_safe = True  # e.g. the benchmarks' memory sampler: the export still forks
    sampler.start()
    try:
        export.write_export(make_state(tmp_path / "sampled"))
    finally:
        done.set()
        sampler.join()
    assert len(forks) == 2
    assert ({p.name: p.read_bytes() for p in s.staging.iterdir()}
            == {p.name: p.read_bytes() for p in alone.staging.iterdir()})


@pytest.mark.parametrize("broken_writer", ["write_shapefile", "write_geojson"])
def test_a_failing_writer_fails_the_export(tmp_path, monkeypatch, broken_writer):
    def broken(*args, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(export, "EXPORT_IN_CHILD", True)
    monkeypatch.setattr(export, broken_writer, broken)  # the forked child inherits it
    s = make_state(tmp_path)
    # raised here, or in the child and reported by it
    with pytest.raises((OSError, RuntimeError), match="disk full"):
        export.write_export(s)
    import multiprocessing

    assert not multiprocessing.active_children()


def test_cancelling_the_child_stops_it_even_inside_a_long_c_call():
    import signal
    import threading

    def on_term(signum, frame):  # like the job runner's handler, inherited by the fork
        raise KeyboardInterrupt("terminated")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        child = export._Child(sum, range(10**12))  # one C call: no Python handler runs
        import time

        time.sleep(1.0)  # inside sum() by now
        stopper = threading.Thread(target=child.cancel)
        stopper.start()
        stopper.join(timeout=20)
        stopped = not stopper.is_alive()
        if not stopped:  # do not leave it running
            import os

            os.kill(child._proc.pid, signal.SIGKILL)
            stopper.join()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped and child._proc.exitcode == -signal.SIGTERM


def test_dbf_is_the_one_gdal_writes(tmp_path):
    n = 6
    frame = pd.DataFrame({
        "ROAD_ID": pd.array([1, None, -7, 10**17 - 1, 0, 42], dtype="Int64"),
        "COL": np.array([3, -2, 0, 5, 6, 7], dtype=np.int64),
        "SCORE": [0.1, np.nan, -0.0, 12345678.123456789, 1e-20, -3.5],
        "NAME": pd.array(["Åsa", None, "", "x" * 70 + "é" * 20, "a,b", "z"], dtype="str"),
        "ROAD_IDS": pd.Series(["{1,2}", None, "{3}", "", None, "{" + "9," * 60 + "9}"],
                              dtype=object),
        "EMPTY": pd.Series([None] * n, dtype=object),
    })
    geoms = [shapely.Point(X0 + i, Y0) for i in range(n)]
    gdal = tmp_path / "gdal.shp"
    gpd.GeoDataFrame(frame, geometry=geoms, crs=UTM).to_file(gdal, driver="ESRI Shapefile",
                                                             encoding="UTF-8")
    ours = b"".join(bytes(p) for p in export._dbf_bytes(frame))
    theirs = gdal.with_suffix(".dbf").read_bytes()
    # bytes 1-3 are the date of the last update
    assert ours[:1] + ours[4:] == theirs[:1] + theirs[4:]

    assert export._dbf_bytes(frame.iloc[:0]) is None  # an empty table: GDAL writes it
    empty = tmp_path / "empty.shp"
    export.write_shapefile(empty, frame.iloc[:0], ["ROAD_ID", "NAME"],
                           gpd.GeoSeries([], crs=UTM))
    assert len(gpd.read_file(empty)) == 0

    # a column GDAL must format itself (booleans) leaves the whole table to GDAL
    assert export._dbf_bytes(frame.assign(FLAG=[True, False] * 3)) is None
    path = tmp_path / "flag.shp"
    export.write_shapefile(path, frame.assign(flag=[True, False] * 3), ["flag", "SCORE"],
                           gpd.GeoSeries(geoms, crs=UTM))
    back = gpd.read_file(path)
    assert back["FLAG"].tolist() == [True, False] * 3 and back["SCORE"].iloc[0] == 0.1
