"""The export (BNA-METHOD §12.1): every file a brokenspoke-analyzer run writes, same names and
columns, into the run's staging folder (the pipeline publishes it only after success).

=============================  ==========================================================
Shapefile (output CRS)         ``neighborhood_census_blocks``, ``neighborhood_ways``
GeoJSON (EPSG:4326)            ``neighborhood_boundary``, ``neighborhood_census_blocks``,
                               the 13 destination tables, ``neighborhood_ways``,
                               ``neighborhood_ways_intersections``
CSV (header row)               ``neighborhood_connected_census_blocks`` (``.csv.gz`` when
                               huge), ``neighborhood_overall_scores``,
                               ``neighborhood_score_inputs``, ``residential_speed_limit``,
                               ``mileage``
=============================  ==========================================================

Formats follow the reference export: GeoJSON with lowercase full column names, NULL as
``null``, empty arrays left out of a feature's properties, destinations as points (``geom_pt``);
shapefiles with upper-case names truncated to 10 characters by GDAL and arrays written as
``{a,b,c}`` text; CSVs with ``t``/``f`` booleans, empty NULLs and ``NUMERIC(16,4)`` scores printed
with 4 decimals. A table that does not exist is skipped, as the reference does. Every file is
written atomically: straight into a run's staging folder (the pipeline moves the files into the
output folder only after success), anywhere else under a temporary name moved into place.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pna_engine.atomic import atomic_path
from pna_engine.destinations import CATEGORIES

if TYPE_CHECKING:
    from pna_engine.state import RunState

WAYS_COLUMNS = (
    "road_id", "osm_id", "tag_id", "name", "intersection_from", "intersection_to", "oneway",
    "tdg_id", "functional_class", "path_id", "speed_limit", "one_way_car", "one_way", "width_ft",
    "ft_bike_infra", "ft_bike_infra_width", "tf_bike_infra", "tf_bike_infra_width", "ft_lanes",
    "tf_lanes", "ft_cross_lanes", "tf_cross_lanes", "twltl_cross_lanes", "ft_park", "tf_park",
    "ft_seg_stress", "ft_int_stress", "tf_seg_stress", "tf_int_stress", "xwalk",
)
INTERSECTION_COLUMNS = ("int_id", "osm_id", "legs", "signalized", "stops", "rrfb", "island")

#: Access categories of a block, in the reference's column order.
BLOCK_ACCESS = (
    "pop", "emp", "schools", "universities", "colleges", "doctors", "dentists", "hospitals",
    "pharmacies", "retail", "supermarkets", "social_services", "parks", "trails",
    "community_centers", "transit",
)
BLOCK_SCORE_COLUMNS = (
    ("road_ids",)
    + tuple(f"{c}_{s}" for c in BLOCK_ACCESS for s in ("low_stress", "high_stress", "score"))
    + ("overall_score", "reachable_blocks", "opportunity_score", "core_services_score",
       "recreation_score")
)
#: Name column of each destination table (retail has none).
DESTINATION_NAME = {
    "colleges": "college_name", "community_centers": "center_name",
    "dentists": "dentists_name", "doctors": "doctors_name", "hospitals": "hospital_name",
    "parks": "park_name", "pharmacies": "pharmacy_name", "retail": None,
    "schools": "school_name", "social_services": "service_name",
    "supermarkets": "supermarket_name", "transit": "transit_name",
    "universities": "college_name",
}
PAIRS_COLUMNS = ("source_blockid20", "target_blockid20", "low_stress", "low_stress_cost",
                 "high_stress", "high_stress_cost")
OVERALL_COLUMNS = ("id", "score_id", "score_original", "score_normalized", "human_explanation")
SCORE_INPUT_COLUMNS = (
    "id", "category", "score_name", "score", "notes", "human_explanation", "use_pop", "use_emp",
    "use_k12", "use_tech", "use_univ", "use_doctor", "use_dentist", "use_hospital",
    "use_pharmacy", "use_retail", "use_grocery", "use_social_svcs", "use_parks", "use_trails",
    "use_comm_ctrs", "use_transit",
)
SPEED_COLUMNS = ("state_fips_code", "city_fips_code", "state_speed", "city_speed")
#: Integer columns of the reference tables (a pandas column holding NULLs may be float).
INTEGER_COLUMNS = frozenset(
    {"road_id", "osm_id", "tag_id", "intersection_from", "intersection_to", "path_id",
     "speed_limit", "width_ft", "ft_lanes", "tf_lanes", "ft_cross_lanes", "tf_cross_lanes",
     "twltl_cross_lanes", "ft_park", "tf_park", "ft_seg_stress", "ft_int_stress",
     "tf_seg_stress", "tf_int_stress", "xwalk", "int_id", "legs", "id", "gid",
     "pop_low_stress", "pop_high_stress", "reachable_blocks"}
    | {f"{c}_{s}" for c in ("pop", "emp", "schools", "universities", "colleges", "doctors",
                            "dentists", "hospitals", "pharmacies", "retail", "supermarkets",
                            "social_services", "parks", "trails", "community_centers",
                            "transit") for s in ("low_stress", "high_stress")})
#: Columns stored as NUMERIC(16,4) by the reference (printed with 4 decimals).
FOUR_DECIMALS = {"score", "score_original", "score_normalized"}
#: Pair rows above which the pairs CSV is gzipped (``.csv.gz``).
PAIRS_GZIP_ROWS = 50_000_000
PAIRS_CHUNK = 100_000


def export_file_names() -> frozenset[str]:
    """Names of every file :func:`write_export` can write (the pipeline clears them from an
    output folder before a new run)."""
    shp = {f"neighborhood_{t}.{e}" for t in ("census_blocks", "ways")
           for e in ("shp", "shx", "dbf", "prj", "cpg")}
    geojson = {f"neighborhood_{t}.geojson" for t in (
        "boundary", "census_blocks", *CATEGORIES, "ways", "ways_intersections")}
    csv = {"neighborhood_connected_census_blocks.csv",
           "neighborhood_connected_census_blocks.csv.gz", "neighborhood_overall_scores.csv",
           "neighborhood_score_inputs.csv", "residential_speed_limit.csv", "mileage.csv"}
    return frozenset(shp | geojson | csv)


# --------------------------------------------------------------------------- targets
@contextlib.contextmanager
def _target(path: Path, direct: bool) -> Iterator[Path]:
    """The file to write for ``path``: ``path`` itself when ``direct`` (a run's staging
    folder: the pipeline publishes its files only after success and deletes it on failure, so
    each file is renamed once, into the output folder), else a temporary name moved over
    ``path`` on success (:func:`~pna_engine.atomic.atomic_path`)."""
    if direct:
        try:
            yield path
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
    else:
        with atomic_path(path) as tmp:
            yield tmp


# --------------------------------------------------------------------------- values
def _column_values(series: Any) -> list[Any]:
    """Python values of a column with every NULL/NaN as None (lists kept as lists)."""
    import pandas as pd

    vals = series.tolist()
    if series.dtype == object:  # may hold lists, numpy scalars, NaN: normalise each value
        return [None if (v is None or (not isinstance(v, list | tuple | np.ndarray)
                                       and pd.isna(v))) else
                _jsonable(list(v) if isinstance(v, tuple | np.ndarray) else v) for v in vals]
    na = series.isna().to_numpy().copy()
    if pd.api.types.is_float_dtype(series.dtype):
        na |= ~np.isfinite(series.to_numpy(dtype=float, na_value=np.nan))
    if na.any():
        return [None if m else v for v, m in zip(vals, na)]
    return vals


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


# --------------------------------------------------------------------------- GeoJSON
#: Rows formatted and written at a time (bounds the memory of the text of a big table).
GEOJSON_CHUNK = 20_000
_FEATURE_START = '{ "type": "Feature", "properties": {'


def _texts_by_value(fn: Any, values: np.ndarray, key: np.ndarray | None = None) -> list[str]:
    """``[fn(v) for v in values]``, formatting each distinct value once when values repeat.

    ``key`` identifies equal values (default: the values; floats pass their bit pattern so
    that 0.0 and -0.0 stay apart)."""
    import pandas as pd

    n = len(values)
    if n < 64:
        return list(map(fn, values.tolist()))
    codes, uniques = pd.factorize(values if key is None else key)
    if 2 * len(uniques) > n:
        return list(map(fn, values.tolist()))
    first = np.zeros(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # first row of each distinct value
    texts = np.array(list(map(fn, values[first].tolist())), dtype=object)
    return texts[codes].tolist()


def _text_values(series: Any, na: np.ndarray) -> np.ndarray | None:
    """The values of a text column (a string dtype, or objects that are all strings or NULL)
    as an object array, NULLs (``na``) as ``""``; None for any other column."""
    import pandas as pd

    dtype = series.dtype
    if not pd.api.types.is_string_dtype(dtype) or (
            pd.api.types.is_object_dtype(dtype)
            and pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty")):
        return None
    v = series.to_numpy(dtype=object, na_value="").copy()
    v[na] = ""
    return v


def _json_texts(series: Any, integer: bool = False) -> tuple[list[str], np.ndarray | None]:
    """JSON text of every value of a column, as ``json.dumps`` writes it in a feature's
    properties: ``null`` for NULL, NaN and infinities, ints of an ``integer`` column holding
    floats (NULLs made them float), lists as JSON arrays.

    Returns the texts and a mask of the rows holding an empty list (left out of the feature,
    as GDAL does) or None when there is none. Column-wise: numbers and strings are formatted
    by C functions (``int.__repr__``, ``float.__repr__``, ``json``'s string encoder), each
    distinct value once; other object values go through the JSON encoder one by one.
    """
    import json.encoder

    import pandas as pd

    n = len(series)
    dtype = series.dtype
    na = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        v = series.to_numpy(dtype=bool, na_value=False)
        texts = np.where(v, "true", "false").astype(object)
    elif pd.api.types.is_integer_dtype(dtype) or (
            integer and pd.api.types.is_float_dtype(dtype)):
        if pd.api.types.is_float_dtype(dtype):
            series = series.round().astype("Int64")
            na = series.isna().to_numpy()
            dtype = series.dtype
        np_dtype = getattr(dtype, "numpy_dtype", dtype)
        v = series.to_numpy(dtype=np_dtype, na_value=0)
        texts = np.asarray(_texts_by_value(int.__repr__, v), dtype=object)
    elif pd.api.types.is_float_dtype(dtype):
        v = series.to_numpy(dtype=np.float64, na_value=np.nan)
        na = na | ~np.isfinite(v)
        v = np.where(na, 0.0, v)
        texts = np.asarray(_texts_by_value(float.__repr__, v, v.view(np.int64)), dtype=object)
    elif (v := _text_values(series, na)) is not None:
        texts = np.asarray(_texts_by_value(json.encoder.encode_basestring, v), dtype=object)
    elif (lists := _list_texts(series, json.encoder.encode_basestring, ", ", "[]")) is not None:
        empty = lists[1] == 0  # an empty list is left out of its feature
        return lists[0], (empty if empty.any() else None)
    else:  # numpy scalars, mixed objects: the encoder, value by value
        encode = json.JSONEncoder(ensure_ascii=False).encode
        vals = _column_values(series)
        empty = np.fromiter((type(v) is list and not v for v in vals), dtype=bool, count=n)
        texts = np.array([encode(v) for v in vals], dtype=object)
        return texts.tolist(), (empty if empty.any() else None)
    if na.any():
        texts[na] = "null"
    return texts.tolist(), None


def _list_texts(series: Any, text: Any, sep: str, brackets: str
                ) -> tuple[list[str], np.ndarray] | None:
    """``brackets[0] + sep.join(elements) + brackets[1]`` of every value of a column whose
    every value is a list (tuple, array) of strings (each formatted by ``text``) or of
    integers (``road_ids``, ``blockid20``), the elements formatted all at once; and the list
    lengths. None for any other column."""
    import itertools

    vals = series.to_numpy(dtype=object)
    if not set(map(type, vals)) <= {list, tuple, np.ndarray}:
        return None
    lengths = np.fromiter(map(len, vals), dtype=np.int64, count=len(vals))
    flat = list(itertools.chain.from_iterable(vals))
    kinds = set(map(type, flat))
    if kinds <= {str}:
        texts = list(map(text, flat))
    elif all(t is int or issubclass(t, np.integer) for t in kinds):
        texts = list(map(int.__repr__, map(int, flat) if kinds - {int} else flat))
    else:
        return None
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]]
    a, b = brackets
    return [a + sep.join(texts[i:j]) + b for i, j in zip(starts, ends)], lengths


def _geojson_rows(table: Any, cols: list[str], gjson: list[str], last: bool) -> str:
    """Text of the features of ``table`` (one per row), each followed by ``,\n`` (the very
    last one of the file, when ``last``, by ``\n``), exactly as the feature-by-feature
    ``json.dumps`` of the properties would write them."""
    from json.encoder import encode_basestring

    n = len(table)
    stride = 2 * len(cols) + 4
    parts: list[str] = [""] * (n * stride)
    parts[0::stride] = [_FEATURE_START] * n
    started = np.zeros(n, dtype=bool)  # a property was already written in the row
    for j, c in enumerate(cols):
        if c in table.columns:
            texts, omit = _json_texts(table[c], c in INTEGER_COLUMNS)
        else:
            texts, omit = ["null"] * n, None
        key = encode_basestring(str(c)) + ": "
        if omit is not None:
            for i in np.flatnonzero(omit).tolist():
                texts[i] = ""
        if started.all() and omit is None:
            keys = [", " + key] * n
        else:
            keys = np.where(started, ", " + key, key).astype(object)
            if omit is not None:
                keys[omit] = ""
            keys = keys.tolist()
        if omit is None:
            started[:] = True
        else:
            started |= ~omit
        parts[1 + 2 * j::stride] = keys
        parts[2 + 2 * j::stride] = texts
    parts[stride - 3::stride] = ['}, "geometry": '] * n
    parts[stride - 2::stride] = gjson
    parts[stride - 1::stride] = [" },\n"] * n
    if last and n:
        parts[-1] = " }\n"
    return "".join(parts)


def write_geojson(path: Path, table: Any, columns: Iterable[str], geometry: Any,
                  name: str | None = None, *, direct: bool = False) -> None:
    """Write a GeoJSON FeatureCollection in EPSG:4326 like GDAL's export of the reference.

    Built column by column (:func:`_json_texts`), :data:`GEOJSON_CHUNK` rows at a time; the
    text is the one a feature-by-feature ``json.dumps`` of the properties writes.

    Parameters
    ----------
    table
        DataFrame with the property columns (missing columns are written as null).
    columns
        Property names, in order.
    geometry
        GeoSeries (any CRS) - reprojected to EPSG:4326.
    """
    import shapely

    geoms = np.asarray(geometry.to_crs(4326).values) if len(geometry) else np.empty(0, object)
    gjson = shapely.to_geojson(geoms) if len(geoms) else np.empty(0, dtype=object)
    gjson = np.where(shapely.is_missing(geoms), "null", gjson).astype(object) if len(geoms) \
        else gjson
    cols = list(columns)
    header = {
        "type": "FeatureCollection",
        "name": name or path.stem,
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
    }
    n = len(table)
    with _target(path, direct) as tmp, open(tmp, "wb") as f:
        head = json.dumps(header, ensure_ascii=False)
        f.write((head[:-1] + ',\n"features": [\n').encode("utf-8"))
        for a in range(0, n, GEOJSON_CHUNK):
            b = min(a + GEOJSON_CHUNK, n)
            rows = table.iloc[a:b]
            f.write(_geojson_rows(rows, cols, gjson[a:b].tolist(), last=b == n).encode("utf-8"))
        f.write(b"]\n}\n")


# --------------------------------------------------------------------------- shapefile
def _array_text(v: Any) -> Any:
    if isinstance(v, list | tuple | np.ndarray):
        return "{" + ",".join(str(_jsonable(x)) for x in v) + "}"
    return v


def _array_texts(series: Any) -> Any:
    """A column holding lists as ``{a,b,c}`` texts (object dtype), the elements of integer or
    string lists formatted all at once (:func:`_list_texts`)."""
    import pandas as pd

    lists = _list_texts(series, str, ",", "{}")
    if lists is None:
        return series.map(_array_text)
    return pd.Series(lists[0], index=series.index, dtype=object)


def _dbf_text(v: Any) -> Any:
    if isinstance(v, str) and len(v.encode("utf-8")) > 254:
        return v.encode("utf-8")[:254].decode("utf-8", errors="ignore")
    return v


def _dbf_texts(series: Any) -> Any:
    """:func:`_dbf_text` of every value (DBF text fields hold 254 bytes, as GDAL truncates);
    only texts of more than 63 characters can be longer than that."""
    import pandas as pd

    vals = series.to_numpy(dtype=object)
    if series.dtype != object and pd.api.types.is_string_dtype(series.dtype):
        chars = series.str.len().to_numpy(dtype=np.float64, na_value=0.0)
        long = np.flatnonzero(chars > 63).tolist()
    else:
        long = [i for i, v in enumerate(vals.tolist()) if isinstance(v, str) and len(v) > 63]
    if not long:
        return series
    out = series.astype(object)
    for i in long:
        out.iat[i] = _dbf_text(vals[i])
    return out


def shapefile_names(columns: Iterable[str]) -> list[str]:
    """DBF field names as in the reference export: upper case, at most 10 characters; a name
    already taken becomes its first 7 characters + ``_01``, ``_02``, ..."""
    out: list[str] = []
    taken: set[str] = set()
    for c in columns:
        name = str(c).upper()[:10]
        k = 1
        while name in taken:
            name = f"{str(c).upper()[:7]}_{k:02d}"
            k += 1
        taken.add(name)
        out.append(name)
    return out


#: DBF field widths GDAL gives pandas columns: Int64/int64 -> N(18), float64 -> N(24.15),
#: text -> C(80), widened to the longest value (at most 254 bytes).
DBF_INT_WIDTH, DBF_REAL_WIDTH, DBF_REAL_DECIMALS, DBF_TEXT_WIDTH = 18, 24, 15, 80


def _dbf_field(series: Any) -> tuple[bytes, int, int, np.ndarray] | None:
    """(type, width, decimals, records (n, width) uint8) of one DBF field as GDAL writes it:
    numbers right-aligned (``%d``, ``%24.15f``), NULL numbers as ``*``, texts left-aligned in
    UTF-8, NULL texts blank. None when GDAL must format the column itself (another dtype, a
    value that does not fit)."""
    import pandas as pd

    dtype = series.dtype
    na = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype) and getattr(dtype, "numpy_dtype", dtype) == np.int64:
        kind, width, dec = b"N", DBF_INT_WIDTH, 0
        v = series.to_numpy(dtype=np.int64, na_value=0)
        if len(v) and np.abs(v).max() >= 10 ** (width - 1):
            return None  # GDAL's overflow handling is its own business
        b = v.astype(f"S{width}")  # decimal digits, exact
    elif pd.api.types.is_float_dtype(dtype) and dtype == np.float64:
        kind, width, dec = b"N", DBF_REAL_WIDTH, DBF_REAL_DECIMALS
        v = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(v).any():
            return None
        v = np.where(na, 0.0, v)
        b = np.array(_texts_by_value(f"%{width}.{dec}f".__mod__, v, v.view(np.int64)),
                     dtype="S")
        if b.dtype.itemsize > width:
            return None
    elif (v := _text_values(series, na)) is not None:
        b = np.array(list(map(str.encode, v.tolist())), dtype="S")
        width = max(DBF_TEXT_WIDTH, b.dtype.itemsize)
        if width > 254:
            return None
        return b"C", width, 0, _fixed_width(np.strings.ljust(b, width, b" "), width)
    else:
        return None
    rec = _fixed_width(np.strings.rjust(b, width, b" "), width)
    rec[na] = ord("*")
    return kind, width, dec, rec


def _fixed_width(b: np.ndarray, width: int) -> np.ndarray:
    """Strings of exactly ``width`` bytes as an (n, width) uint8 matrix."""
    b = np.ascontiguousarray(b, dtype=f"S{width}")
    return b.view(np.uint8).reshape(len(b), width)


def _dbf_bytes(frame: Any) -> list[Any] | None:
    """The ``.dbf`` GDAL's shapefile driver writes for ``frame`` (column names already DBF
    names), built with numpy, as parts to write one after the other (header, records array,
    end mark); None when a column needs GDAL (see :func:`_dbf_field`)."""
    import datetime as dt
    import struct

    n = len(frame)
    if n == 0:
        return None  # nothing to gain
    fields = []
    for name in frame.columns:
        f = _dbf_field(frame[name].reset_index(drop=True))
        if f is None or len(str(name).encode()) > 10:
            return None
        fields.append((str(name), *f))
    reclen = 1 + sum(f[2] for f in fields)
    head_len = 32 + 32 * len(fields) + 1
    today = dt.datetime.now(dt.UTC)
    head = [struct.pack("<BBBBIHH20x", 3, today.year - 1900, today.month, today.day, n,
                        head_len, reclen)]
    for name, kind, width, dec, _ in fields:
        head.append(name.encode().ljust(11, b"\0") + kind + bytes(4) + bytes([width, dec])
                    + bytes(14))
    head.append(b"\r")
    # one record per row: a structured array whose fields are the byte strings of the fields
    # (each value copied as one block, not byte by byte)
    layout = np.dtype([("deleted", "V1")] + [(f"f{i}", f"V{f[2]}") for i, f in enumerate(fields)])
    rec = np.empty(n, dtype=layout)
    rec["deleted"] = np.frombuffer(b" ", dtype="V1")[0]  # not deleted
    for i, (_, _, width, _, r) in enumerate(fields):
        rec[f"f{i}"] = np.ascontiguousarray(r).view(f"V{width}").ravel()
    return [b"".join(head), rec, b"\x1a"]


def write_shapefile(path: Path, table: Any, columns: Iterable[str], geometry: Any, *,
                    direct: bool = False) -> None:
    """Write a shapefile (``.shp/.shx/.dbf/.prj/.cpg``) in the geometry's CRS with the field
    names of :func:`shapefile_names`; arrays become ``{a,b}`` text."""
    import geopandas as gpd
    import pandas as pd

    data = {}
    cols = list(columns)
    for c, field_name in zip(cols, shapefile_names(cols)):
        if c not in table.columns:
            data[field_name] = pd.Series([None] * len(table), dtype=object)
            continue
        s = table[c].reset_index(drop=True)
        if s.dtype == object and set(map(type, s.to_numpy())) & {list, tuple, np.ndarray}:
            s = _array_texts(s)
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            s = _dbf_texts(s)
        elif c in INTEGER_COLUMNS and pd.api.types.is_float_dtype(s.dtype):
            s = s.round().astype("Int64")
        data[field_name] = s
    frame = pd.DataFrame(data)
    dbf = _dbf_bytes(frame)  # None: a column GDAL must format itself
    gdf = gpd.GeoDataFrame(frame if dbf is None else None,
                           geometry=geometry.reset_index(drop=True).values, crs=geometry.crs)
    import warnings

    path.parent.mkdir(parents=True, exist_ok=True)
    # the parts are written together in a folder of their own (the staging folder of a run,
    # else a temporary one whose parts then replace the old ones)
    tmpdir = path.parent if direct else Path(
        tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GDAL warns about truncated names and texts
            gdf.to_file(tmpdir / path.name, driver="ESRI Shapefile", encoding="UTF-8")
        if dbf is not None:  # GDAL wrote the geometries; the attribute table is ours
            with open((tmpdir / path.name).with_suffix(".dbf"), "wb") as f:
                for part in dbf:
                    f.write(part)
        if not direct:
            for p in sorted(tmpdir.iterdir()):
                os.replace(p, path.with_suffix(p.suffix))
    finally:
        if not direct:
            shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------- CSV
def _csv_column(series: Any, name: str) -> Any:
    """Text of a column as PostgreSQL's CSV export prints it."""
    import pandas as pd

    s = series.reset_index(drop=True)
    na = s.isna().to_numpy()
    if pd.api.types.is_bool_dtype(s.dtype) or (
            s.dtype == object and s.dropna().map(lambda v: isinstance(v, bool | np.bool_)).all()
            and s.notna().any()):
        out = np.where(s.fillna(False).astype(bool).to_numpy(), "t", "f").astype(object)
    elif pd.api.types.is_float_dtype(s.dtype) and name in FOUR_DECIMALS:
        out = np.array([_numeric4(v) if not m else "" for v, m in zip(s.to_numpy(), na)],
                       dtype=object)
    elif s.dtype == object and name in FOUR_DECIMALS:
        out = np.array([_numeric4(v) if not m else "" for v, m in zip(s.tolist(), na)],
                       dtype=object)
    elif pd.api.types.is_float_dtype(s.dtype):
        out = np.array([repr(float(v)) if not m else "" for v, m in zip(s.to_numpy(), na)],
                       dtype=object)
    else:
        out = np.array([str(_jsonable(v)) if not m else "" for v, m in zip(s.tolist(), na)],
                       dtype=object)
    out[na] = ""
    return out


def _numeric4(v: Any) -> str:
    """A value as PostgreSQL prints a ``NUMERIC(16,4)``: 4 decimals, ties away from zero."""
    from decimal import ROUND_HALF_UP, Decimal

    d = v if isinstance(v, Decimal) else Decimal(f"{float(v):.15g}")
    return str(d.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def write_csv(path: Path, table: Any, columns: Iterable[str], *, direct: bool = False) -> None:
    """Write a small table as CSV with a header row, reference formatting."""
    import pandas as pd

    cols = list(columns)
    data = {c: (_csv_column(table[c], c) if c in table.columns else [""] * len(table))
            for c in cols}
    df = pd.DataFrame(data, columns=cols)
    with _target(path, direct) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


def _records(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as fixed-size records, one per text: the bytes left-aligned and padded,
    and the mask of the valid bytes (both as numpy ``void`` arrays, gathered row by row)."""
    b = np.array(texts, dtype=bytes)
    width = max(b.dtype.itemsize, 1)
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    m = _fixed_width(b, width)
    valid = (np.arange(width)[None, :] < lengths[:, None]).astype(np.uint8)
    return (np.ascontiguousarray(m).view(f"V{width}").ravel(),
            np.ascontiguousarray(valid).view(f"V{width}").ravel())


#: Largest cost printed from a lookup table of every cost text (above: per-chunk table).
COST_TABLE_MAX = 1 << 20


class _PairsFormat:
    """Text pieces of the pairs CSV rows: ``geoid,`` per block, and ``t,cost,`` / ``t,cost\n``
    per (flag, cost) code, so a row is four table lookups (no per-row Python)."""

    def __init__(self, geoids: np.ndarray, max_cost: int):
        self.blocks = _records([f"{g},".encode() for g in geoids.tolist()])
        self.max_cost = max_cost
        self.costs = self._cost_texts(np.arange(max_cost + 1)) \
            if max_cost <= COST_TABLE_MAX else None

    @staticmethod
    def _cost_texts(values: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """(low, high) records of codes ``flag * (len(values) + 1) + 1 + i`` (code
        ``flag * (len(values) + 1)``: NULL cost)."""
        digits = ["", *map(str, values.tolist())]
        return tuple(_records([f"{flag},{d}{end}".encode() for flag in "ft" for d in digits])
                     for end in (",", "\n"))

    def rows(self, source: np.ndarray, target: np.ndarray, low: np.ndarray,
             low_cost: np.ndarray, high: np.ndarray, high_cost: np.ndarray) -> bytes:
        """CSV text of these pairs (costs: int64, negative = NULL)."""
        n = len(source)
        if n == 0:
            return b""
        if self.costs is not None:
            tables, values = self.costs, None
            span = self.max_cost + 2
        else:  # huge costs: a table of this chunk's distinct costs
            values, inverse = np.unique(np.concatenate([low_cost, high_cost]),
                                        return_inverse=True)
            tables, span = self._cost_texts(values), len(values) + 1
        def code(flag: np.ndarray, cost: np.ndarray, part: int) -> np.ndarray:
            if values is None:
                c = np.where(cost < 0, 0, cost + 1)
            else:
                idx = inverse[part * n:(part + 1) * n].reshape(-1)
                c = np.where(cost < 0, 0, idx + 1)
            return np.asarray(flag, dtype=bool).astype(np.int64) * span + c

        lc, hc = code(low, low_cost, 0), code(high, high_cost, 1)
        (bt, bv), ((lt, lv), (ht, hv)) = self.blocks, tables
        fields = [("s", bt.dtype), ("t", bt.dtype), ("l", lt.dtype), ("h", ht.dtype)]
        text, valid = np.empty(n, dtype=fields), np.empty(n, dtype=fields)
        text["s"], text["t"], text["l"], text["h"] = bt[source], bt[target], lt[lc], ht[hc]
        valid["s"], valid["t"], valid["l"], valid["h"] = bv[source], bv[target], lv[lc], hv[hc]
        return text.view(np.uint8)[valid.view(np.uint8).view(bool)].tobytes()


def _cost_ints(c: np.ndarray) -> np.ndarray:
    """Costs as int64 with -1 for NULL (negative or NaN)."""
    c = np.asarray(c)
    if c.dtype.kind == "f":
        null = np.isnan(c)
        return np.where(null | (c < 0), -1, np.where(null, 0, c)).astype(np.int64)
    return np.where(c < 0, -1, c).astype(np.int64)


def write_pairs_csv(path: Path, geoids: np.ndarray, source: np.ndarray, target: np.ndarray,
                    low_stress: np.ndarray, low_cost: np.ndarray, high_stress: np.ndarray,
                    high_cost: np.ndarray, *, direct: bool = False) -> Path:
    """Stream the connected block pairs to CSV, one chunk of rows at a time.

    ``source``/``target`` index ``geoids``; ``low_cost``/``high_cost`` are integers with a
    negative value (or NaN for floats) meaning NULL. Above :data:`PAIRS_GZIP_ROWS` rows the file
    is gzipped (``.csv.gz``). Returns the path written.
    """
    n = len(source)
    if n > PAIRS_GZIP_ROWS:
        path = path.with_name(path.name + ".gz")
    arrays = [np.asarray(a) for a in (source, target, low_stress, low_cost, high_stress,
                                      high_cost)]
    max_cost = max((int(np.nanmax(c, initial=0)) for c in (arrays[3], arrays[5])), default=0)
    fmt = _PairsFormat(np.asarray(geoids, dtype=object), max_cost)

    def opener(p: Path) -> Any:
        if n > PAIRS_GZIP_ROWS:
            return gzip.open(p, "wb", compresslevel=1)  # noqa: SIM115
        return open(p, "wb")  # noqa: SIM115

    def chunk(a: int) -> bytes:
        src, dst, low, lcost, high, hcost = (x[a:a + PAIRS_CHUNK] for x in arrays)
        return fmt.rows(src, dst, low, _cost_ints(lcost), high, _cost_ints(hcost))

    from concurrent.futures import ThreadPoolExecutor

    # one thread builds the next chunk while this one writes (numpy, zlib and file writes
    # release the GIL); at most two chunks in memory
    with _target(path, direct) as tmp, opener(tmp) as f, ThreadPoolExecutor(1) as builder:
        f.write((",".join(PAIRS_COLUMNS) + "\n").encode())
        starts = range(0, n, PAIRS_CHUNK)
        pending = builder.submit(chunk, starts[0]) if n else None
        for a in starts[1:]:
            data = pending.result()
            pending = builder.submit(chunk, a)
            f.write(data)
        if pending is not None:
            f.write(pending.result())
    return path


# --------------------------------------------------------------------------- tables
def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _blocks_table(s: RunState) -> Any:
    blocks = _get(s.scores, "blocks")
    return blocks if blocks is not None else s.blocks


def block_columns(blocks: Any) -> list[str]:
    """Export columns of the census blocks: ``gid``, the source attributes, then the analysis
    columns in the reference's order."""
    geom = blocks.geometry.name
    analysis = set(BLOCK_SCORE_COLUMNS)
    source = [c for c in blocks.columns
              if c != geom and c not in analysis and not str(c).startswith("_")
              and c not in ("gid",) and getattr(blocks[c], "dtype", None) is not None
              and str(blocks[c].dtype) != "geometry"]
    return ["gid", *source, *BLOCK_SCORE_COLUMNS]


def _with_gid(table: Any) -> Any:
    if "gid" not in table.columns:
        table = table.copy()
        table.insert(0, "gid", np.arange(1, len(table) + 1, dtype=np.int64))
    return table


def _pairs_arrays(s: RunState) -> tuple[np.ndarray, ...] | None:
    """The connected pairs as (geoids, source, target, low, low_cost, high, high_cost)."""
    conn = s.connectivity
    if conn is None:
        return None
    pairs = _get(conn, "pairs")
    if pairs is not None and hasattr(pairs, "columns"):  # DataFrame with the export columns
        ids = np.asarray(pd_unique_concat(pairs["source_blockid20"], pairs["target_blockid20"]))
        pos = {v: i for i, v in enumerate(ids)}
        src = np.array([pos[v] for v in pairs["source_blockid20"]], dtype=np.int64)
        dst = np.array([pos[v] for v in pairs["target_blockid20"]], dtype=np.int64)
        return (ids, src, dst, pairs["low_stress"].to_numpy(bool),
                pairs["low_stress_cost"].to_numpy(dtype=float, na_value=np.nan),
                pairs["high_stress"].to_numpy(bool),
                pairs["high_stress_cost"].to_numpy(dtype=float, na_value=np.nan))
    src = _get(conn, "source")  # pna_engine.connectivity.Connectivity: compact arrays
    if src is None:
        return None
    geoids = _get(conn, "geoids")
    if geoids is None:  # block indices are row positions in s.blocks
        geoids = s.blocks["geoid20"].astype(str).to_numpy(dtype=object)
    high = _get(conn, "high_stress")
    if high is None:  # every exported pair is reachable on the full network
        high = np.ones(len(src), dtype=bool)
    low_cost = _get(conn, "low_cost")
    high_cost = _get(conn, "high_cost")
    return (np.asarray(geoids, dtype=object), np.asarray(src), np.asarray(_get(conn, "target")),
            np.asarray(_get(conn, "low_stress")),
            np.asarray(low_cost if low_cost is not None else _get(conn, "low_stress_cost")),
            np.asarray(high),
            np.asarray(high_cost if high_cost is not None else _get(conn, "high_stress_cost")))


def pd_unique_concat(a: Any, b: Any) -> np.ndarray:
    import pandas as pd

    return pd.unique(np.concatenate([np.asarray(a, dtype=object), np.asarray(b, dtype=object)]))


def _speed_table(s: RunState) -> Any:
    import pandas as pd

    sp = s.speeds
    if sp is None:
        return None
    if hasattr(sp, "columns"):
        return sp
    row = {c: _get(sp, c) for c in SPEED_COLUMNS}
    # char(2) / char(7) columns: PostgreSQL pads them with blanks
    for c, width in (("state_fips_code", 2), ("city_fips_code", 7)):
        if row[c] is not None:
            row[c] = str(row[c]).ljust(width)
    for c in ("state_speed", "city_speed"):
        row[c] = pd.array([row[c]], dtype="Int64")[0] if row[c] is not None else None
    return pd.DataFrame([row]).astype({"state_speed": "Int64", "city_speed": "Int64"})


#: Share the export files with a forked process (Linux only: fork is the default start method
#: there and the child inherits the tables without copying them). Only from a process with
#: no other thread (:func:`_can_fork`).
EXPORT_IN_CHILD = sys.platform.startswith("linux")


def _can_fork() -> bool:
    """Whether the export may fork: :data:`EXPORT_IN_CHILD` and no other thread runs but
    threads marked ``fork_safe = True`` (they hold no lock the child could need, like the
    benchmarks' memory sampler). A fork copies just the calling thread, so a lock another
    thread holds (a Jupyter kernel's I/O threads, any caller's) would stay locked forever in
    the child."""
    import threading

    me = threading.current_thread()
    return EXPORT_IN_CHILD and all(t is me or getattr(t, "fork_safe", False)
                                   for t in threading.enumerate())


class _Child:
    """``fn(*args)`` in a forked process; :meth:`result` waits for it and raises
    ``RuntimeError`` with the child's error when it failed."""

    def __init__(self, fn: Any, *args: Any):
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)

        def target() -> None:
            import signal

            # the parent decides: Ctrl-C goes to it, and cancel()'s SIGTERM ends the child
            # at once even inside GDAL (a Python handler inherited from the parent, like the
            # job runner's, would only run after the C call returns)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                fn(*args)
            except OSError as exc:  # a full or read-only disk: the parent says so
                send.send((exc.errno, exc.strerror, exc.filename))
                raise SystemExit(1) from None
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                send.send(f"{type(exc).__name__}: {exc}")
                raise SystemExit(1) from None
            send.send(None)

        self._proc = ctx.Process(target=target, name="pna-export", daemon=True)
        self._proc.start()
        send.close()

    def result(self) -> None:
        try:
            error = self._recv.recv()
        except EOFError:
            error = "the process ended without a result"
        self._proc.join()
        if isinstance(error, tuple):
            raise OSError(*error)
        if error is not None or self._proc.exitcode != 0:
            raise RuntimeError(f"export child process failed ({self._proc.exitcode}): {error}")

    def cancel(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()
        self._recv.close()


# --------------------------------------------------------------------------- entry point
def _export_tasks(s: RunState, out: Path, blocks: Any) -> list[Callable[[], None]]:
    """The files to write but the pairs CSV, one task (a function writing it) per file,
    biggest first."""
    tasks: list[Callable[[], None]] = []

    def task(fn: Any, *args: Any) -> None:
        tasks.append(functools.partial(fn, *args, direct=True))

    if s.ways is not None:
        task(write_shapefile, out / "neighborhood_ways.shp", s.ways, WAYS_COLUMNS,
             s.ways.geometry)
    if blocks is not None:  # the reference's shapefile has no gid
        cols = block_columns(blocks)
        task(write_shapefile, out / "neighborhood_census_blocks.shp", blocks, cols[1:],
             blocks.geometry)
        task(write_geojson, out / "neighborhood_census_blocks.geojson", blocks, cols,
             blocks.geometry)
    if s.ways is not None:
        task(write_geojson, out / "neighborhood_ways.geojson", s.ways, WAYS_COLUMNS,
             s.ways.geometry)
    if s.intersections is not None:
        task(write_geojson, out / "neighborhood_ways_intersections.geojson", s.intersections,
             INTERSECTION_COLUMNS, s.intersections.geometry)
    if s.boundary is not None:
        def boundary(direct: bool) -> None:
            b = _with_gid(_boundary_with_attributes(s.boundary))
            write_geojson(out / "neighborhood_boundary.geojson", b,
                          [c for c in b.columns if c != b.geometry.name],
                          _force_multi_series(b.geometry), direct=direct)

        task(boundary)
    dests = _get(s.scores, "destinations") or s.destinations or {}
    for cat in CATEGORIES:
        t = dests.get(cat)
        if t is None:
            continue
        name_col = DESTINATION_NAME[cat]
        cols = ["id", "blockid20"] + (["osm_id", name_col] if name_col else []) + [
            "pop_low_stress", "pop_high_stress", "pop_score"]
        geom = t["geom_pt"] if "geom_pt" in t.columns else t.geometry
        task(write_geojson, out / f"neighborhood_{cat}.geojson", t, cols, geom)
    for attr, fname, cols in (
        ("overall_scores", "neighborhood_overall_scores.csv", OVERALL_COLUMNS),
        ("score_inputs", "neighborhood_score_inputs.csv", SCORE_INPUT_COLUMNS),
        ("mileage", "mileage.csv", ("feature_type", "total_mileage")),
    ):
        t = _get(s.scores, attr)
        if t is not None:
            task(write_csv, out / fname, t, cols)
    speeds = _speed_table(s)
    if speeds is not None:
        task(write_csv, out / "residential_speed_limit.csv", speeds, SPEED_COLUMNS)
    return tasks


def _run_tasks(tasks: list[Callable[[], None]], counter: Any) -> None:
    """Run the tasks not taken yet, one at a time: ``counter`` (shared with a forked child)
    hands out the next task index."""
    while True:
        with counter.get_lock():
            i = counter.value
            counter.value = i + 1
        if i >= len(tasks):
            return
        tasks[i]()


def write_export(s: RunState) -> None:
    """Write every export file of §12.1 into ``s.staging``; records ``s.counts["export_files"]``.

    ``s.staging`` is a folder its owner (the pipeline) publishes only after success and deletes
    on failure, so each file is written in place there (the writers' ``direct=True``); the
    writers called alone write each file under a temporary name and rename it.

    A background thread writes the pairs CSV (numpy and file writes release the GIL) while
    this process and a forked child (:func:`_can_fork`) share the other files, biggest
    first, each taking the next one when it is free (GDAL and the text formatting hold the
    GIL: a second thread would not run in parallel).

    Parameters
    ----------
    s
        The run's state; reads the tables of every phase (``ways``, ``intersections``,
        ``blocks``, ``boundary``, ``connectivity``, ``destinations``, ``scores``, ``speeds``) and
        ``s.staging``; a missing table is skipped.
    """
    import multiprocessing as mp
    from concurrent.futures import ThreadPoolExecutor

    out = Path(s.staging)
    out.mkdir(parents=True, exist_ok=True)
    blocks = _blocks_table(s)
    if blocks is not None:
        blocks = _with_gid(blocks)
    pairs = _pairs_arrays(s)
    tasks = _export_tasks(s, out, blocks)

    in_child = len(tasks) > 1 and _can_fork()
    counter = mp.get_context("fork" if in_child else None).Value("q", 0)
    # forked before any thread starts: the child holds no lock another thread took
    child = _Child(_run_tasks, tasks, counter) if in_child else None
    with ThreadPoolExecutor(1) as background, contextlib.ExitStack() as cleanup:
        if child is not None:
            cleanup.callback(child.cancel)  # any failure here stops the child
        pairs_job = None if pairs is None else background.submit(
            write_pairs_csv, out / "neighborhood_connected_census_blocks.csv", *pairs,
            direct=True)
        _run_tasks(tasks, counter)
        if child is not None:
            child.result()  # raises the child's failure
        if pairs_job is not None:
            pairs_job.result()
    s.counts["export_files"] = len(tasks) + (pairs_job is not None)  # a shapefile counts once


def _boundary_with_attributes(boundary: Any) -> Any:
    """The boundary with its source attributes (lowercase), as the reference exports it.

    The import dissolves the boundary to one geometry; when the source file has exactly one
    feature its attributes (e.g. ``name``) are read back from ``boundary.attrs["source"]``.
    """
    geom = boundary.geometry.name
    b = boundary.rename(columns={c: c.lower() for c in boundary.columns if c != geom})
    src = boundary.attrs.get("source")
    if len(b.columns) == 1 and src and len(b) == 1:
        import pyogrio

        try:
            attrs = pyogrio.read_dataframe(src, read_geometry=False)
        except Exception:  # attributes are informative only
            return b
        if len(attrs) == 1:
            for c in attrs.columns:
                b.insert(len(b.columns) - 1, str(c).lower(), attrs[c].to_numpy())
    return b


def _force_multi_series(geoms: Any) -> Any:
    import geopandas as gpd

    from pna_engine.destinations import _force_multi

    return gpd.GeoSeries(_force_multi(np.asarray(geoms.values)), crs=geoms.crs)
