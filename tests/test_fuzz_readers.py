"""Property tests (hypothesis) on every reader of user files: places CSV / GeoPackage, LODES,
population layers, boundaries and the config file. Whatever the file holds, the reader either
succeeds or raises the project's :class:`InputError` (one line for the user) - never another
exception. Bounded examples and no deadline keep the suite fast and steady on a busy machine.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pna_engine.errors import InputError

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FUZZ, max_examples=25)

# values users type into files: words, numbers, blanks, separators, quotes, odd unicode
cell = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "true", "maybe", "NaN", "-1", "0", "1e309", "US", "MA", "12",
                     "2567000", "0667000", ";", '"', "a;b", "\n", "\x00", "é", "１２"]),
)
raw = st.binary(max_size=400)


def _tmp(suffix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix="pna-fuzz-"))
    return d / f"input{suffix}"


def _only_input_errors(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except InputError as exc:
        assert str(exc).strip(), "an InputError must say something"
        return None


# --------------------------------------------------------------------------- places
PLACE_COLUMNS = ("place", "boundary", "osm", "population", "jobs", "country", "state",
                 "state_fips", "city_fips", "city_speed_limit", "state_speed_limit",
                 "max_trip_distance", "offline")


@st.composite
def places_csv(draw) -> str:
    cols = draw(st.lists(st.sampled_from(PLACE_COLUMNS + ("extra", "Place", "")), min_size=0,
                         max_size=8, unique=True))
    rows = draw(st.lists(st.lists(cell, min_size=len(cols), max_size=len(cols) + 1),
                         max_size=4))
    def q(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n') else v
    return "\n".join([",".join(q(c) for c in cols)] + [",".join(q(v) for v in r) for r in rows])


@FUZZ
@given(text=places_csv(), boundary_exists=st.booleans())
def test_places_csv(text, boundary_exists):
    from pna_helpers.jobs import read_places

    f = _tmp(".csv")
    if boundary_exists:  # a real file some rows may name
        (f.parent / "b.geojson").write_text('{"type": "FeatureCollection", "features": []}')
        text = text.replace("b.geojson", str(f.parent / "b.geojson"))
    f.write_text(text, encoding="utf-8")
    _only_input_errors(read_places, f)


@FEW
@given(data=raw)
def test_places_csv_bytes(data):
    from pna_helpers.jobs import read_places

    f = _tmp(".csv")
    f.write_bytes(data)
    _only_input_errors(read_places, f)


@FEW
@given(names=st.lists(cell, min_size=1, max_size=3),
       extra=st.dictionaries(st.sampled_from(PLACE_COLUMNS[2:]), cell, max_size=3),
       geom=st.sampled_from(["polygon", "point", "empty"]))
def test_places_geopackage(names, extra, geom):
    import geopandas as gpd
    from shapely.geometry import Point, Polygon, box

    from pna_helpers.jobs import read_places

    shapes = {"polygon": box(24.9, 60.1, 25.0, 60.2), "point": Point(24.9, 60.1),
              "empty": Polygon()}
    data = {"name": [n.replace("\x00", "") for n in names]}
    data.update({k: [v.replace("\x00", "")] * len(names) for k, v in extra.items()})
    gdf = gpd.GeoDataFrame(data, geometry=[shapes[geom]] * len(names), crs=4326)
    f = _tmp(".gpkg")
    gdf.to_file(f, driver="GPKG")
    _only_input_errors(read_places, f)


# --------------------------------------------------------------------------- LODES
@st.composite
def lodes_text(draw) -> str:
    header = draw(st.sampled_from([["w_geocode", "h_geocode", "S000"], ["w_geocode", "S000"],
                                   ["S000", "w_geocode", "SA01"], ["w_geocode"], ["x", "y"]]))
    rows = draw(st.lists(st.lists(st.one_of(cell, st.integers(0, 10**6).map(str),
                                            st.just("250010001001000")),
                                  min_size=len(header) - 1, max_size=len(header) + 1),
                         max_size=6))
    return "\n".join([",".join(header)] + [",".join(v.replace(",", "") for v in r)
                                            for r in rows]) + "\n"


@FUZZ
@given(text=lodes_text(), gz=st.booleans())
def test_lodes(text, gz):
    from pna_engine.jobsdata import read_lodes

    f = _tmp(".csv.gz" if gz else ".csv")
    data = text.encode("utf-8", "surrogatepass")
    f.write_bytes(gzip.compress(data) if gz else data)
    out = _only_input_errors(read_lodes, f)
    if out is not None:  # a success is a sane table: whole, non-negative counts per block
        assert (out >= 0).all() and str(out.dtype) == "int64"


@FEW
@given(data=raw, suffix=st.sampled_from([".csv", ".csv.gz"]))
def test_lodes_bytes(data, suffix):
    from pna_engine.jobsdata import read_lodes

    f = _tmp(suffix)
    f.write_bytes(data)
    _only_input_errors(read_lodes, f)


# --------------------------------------------------------------------------- population
pop_value = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                      st.integers(-10**6, 10**6), cell)
id_value = st.one_of(st.none(), cell, st.integers(-5, 10**15),
                     st.floats(allow_nan=True, allow_infinity=True))


@FEW
@given(ids=st.lists(id_value, min_size=1, max_size=4), data=st.data(),
       fields=st.sampled_from([("GEOID20", "POP20"), ("BLOCKID10", "POP10"), ("geoid", "pop")]),
       driver=st.sampled_from(["GPKG", "GeoJSON"]))
def test_population_layer(ids, data, fields, driver):
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    from pna_engine.population import read_blocks

    pops = data.draw(st.lists(pop_value, min_size=len(ids), max_size=len(ids)))

    def column(values):  # one type per column, as a GIS layer has
        if all(isinstance(v, int | float) or v is None for v in values):
            return pd.Series(values, dtype="float64")
        return pd.Series([None if v is None else str(v).replace("\x00", "") for v in values],
                         dtype=object)

    gdf = gpd.GeoDataFrame({fields[0]: column(ids), fields[1]: column(pops)},
                           geometry=[box(i, 0, i + 1, 1) for i in range(len(ids))], crs=4326)
    f = _tmp(".gpkg" if driver == "GPKG" else ".geojson")
    gdf.to_file(f, driver=driver)
    out = _only_input_errors(read_blocks, f)
    if out is not None:
        pop = out["pop20"].to_numpy()
        assert all(math.isfinite(v) and v >= 0 for v in pop)


@FEW
@given(data=raw, suffix=st.sampled_from([".gpkg", ".geojson", ".zip", ".shp", ".tif"]))
def test_population_bytes(data, suffix):
    from pna_engine.population import read_blocks

    f = _tmp(suffix)
    f.write_bytes(data)
    _only_input_errors(read_blocks, f)


# --------------------------------------------------------------------------- boundary
coord = st.floats(-200, 200, allow_nan=False) | st.sampled_from([float("nan"), 1e308, -0.0])


@st.composite
def geojson(draw) -> str:
    def ring():
        pts = draw(st.lists(st.tuples(coord, coord), min_size=0, max_size=5))
        return [list(p) for p in pts] + ([list(pts[0])] if pts and draw(st.booleans()) else [])

    kind = draw(st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString", None]))
    if kind == "Polygon":
        g = {"type": kind, "coordinates": [ring()]}
    elif kind == "MultiPolygon":
        g = {"type": kind, "coordinates": [[ring()] for _ in range(draw(st.integers(0, 2)))]}
    elif kind == "Point":
        g = {"type": kind, "coordinates": list(draw(st.tuples(coord, coord)))}
    elif kind == "LineString":
        g = {"type": kind, "coordinates": ring()}
    else:
        g = None
    n = draw(st.integers(0, 3))
    feats = [{"type": "Feature", "properties": {"name": draw(cell)}, "geometry": g}] * n
    return json.dumps({"type": "FeatureCollection", "features": feats}, allow_nan=True)


@FUZZ
@given(text=geojson())
def test_boundary_geojson(text):
    from pna_engine.boundary import load_boundary

    f = _tmp(".geojson")
    f.write_text(text)
    _only_input_errors(load_boundary, f)


@FEW
@given(data=raw, suffix=st.sampled_from([".geojson", ".gpkg", ".zip", ".shp", ".json"]))
def test_boundary_bytes(data, suffix):
    from pna_engine.boundary import load_boundary

    f = _tmp(suffix)
    f.write_bytes(data)
    _only_input_errors(load_boundary, f)


# --------------------------------------------------------------------------- config file
SETTING_KEYS = ("backend", "concurrency", "region", "job_queue", "compute_type", "min_vcpus",
                "max_vcpus", "instance_types", "subnets", "job_timeout_s", "outputs",
                "aws_read_timeout_s", "aws_max_attempts", "unknown_key", "aws_secret_access_key",
                "pna")
toml_value = st.one_of(
    st.text(max_size=10).map(json.dumps), st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda v: "nan" if v != v else ("inf" if v == math.inf else "-inf" if v == -math.inf
                                        else repr(v))),
    st.sampled_from(["true", "[]", '["a", "b"]', "[1, 2]", "{a = 1}", '"local"', '"aws"',
                     '"SPOT"', "1979-05-27", "= =", '"unterminated']))


@FUZZ
@given(pairs=st.dictionaries(st.sampled_from(SETTING_KEYS), toml_value, max_size=5),
       table=st.booleans())
def test_config_file(pairs, table, tmp_path_factory):
    from pna_helpers.config import Settings

    f = _tmp(".toml")
    body = "\n".join(f"{k} = {v}" for k, v in pairs.items())
    f.write_text(("[pna]\n" if table else "") + body + "\n", encoding="utf-8")
    out = tmp_path_factory.getbasetemp() / "fuzz-outputs"
    s = _only_input_errors(Settings.load, config_file=f, outputs=str(out))
    if s is not None:
        assert s.backend in ("local", "aws") and s.concurrency >= 1


@FEW
@given(data=raw)
def test_config_bytes(data, tmp_path_factory):
    from pna_helpers.config import Settings

    f = _tmp(".toml")
    f.write_bytes(data)
    _only_input_errors(Settings.load, config_file=f,
                       outputs=str(tmp_path_factory.getbasetemp() / "fuzz-outputs"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Readers never reach the network here: every URL points at a closed local port."""
    monkeypatch.setenv("PNA_CACHE_DIR", tempfile.mkdtemp(prefix="pna-fuzz-cache-"))
