"""Analysis requests: what one job analyses, validated on creation.

A request names a place and its inputs (paths or ``http(s)://`` / ``s3://`` URLs) plus the
parameters of ``pna-engine run``. :func:`read_places` reads many from a CSV or a GeoPackage of
places; :func:`demo_request` is the bundled offline demo place (central Helsinki).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import field
from pathlib import Path
from typing import Any

from pna_engine.errors import InputError
from pna_engine.params import (
    ParamError,
    Params,
    field_default,
    input_roles,
    is_remote,
    request_fields,
)
from pna_helpers.paths import is_utf8, outputs_dir
from pna_helpers.paths import slugify as slugify  # re-exported

#: Columns of a places CSV / GeoPackage: the request fields (``place`` and ``boundary`` are
#: required in a CSV).
PLACE_COLUMNS = tuple(f.name for f in request_fields())


def is_url(value: str) -> bool:
    """True for ``http(s)://`` and ``s3://`` locations.

    Parameters
    ----------
    value
        A path or URL.

    Returns
    -------
    bool
    """
    return is_remote(value)


class _Request:
    """Methods of :class:`AnalysisRequest` (whose fields come from the parameter schema)."""

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Normalise and check every field; raise :class:`InputError` naming the bad one.

        The values are checked by the engine's own rules (:meth:`Params.normalise`: a place
        name on one line, ...); a request adds: a non-empty place name, and local input files
        that exist (made absolute).
        """
        if not isinstance(self.place, str) or not self.place.strip():
            raise InputError("request field 'place': give a non-empty place name")
        try:
            values = Params.normalise({f: getattr(self, f) for f in _REQUEST_FIELDS})
        except ParamError as exc:
            raise exc.for_request() from None
        values["boundary"] = self._local("boundary", values["boundary"])
        for role in input_roles():
            if role != "boundary" and values[role]:
                values[role] = self._local(role, values[role])
        values["jobs"] = [self._local("jobs", j) for j in values["jobs"]]
        for name, value in values.items():
            setattr(self, name, value)
        for name in _REQUEST_FIELDS:  # stored, logged and sent to S3 as UTF-8
            field_value = getattr(self, name)
            for value in field_value if isinstance(field_value, list) else [field_value]:
                if isinstance(value, str) and not is_utf8(value):
                    raise InputError(
                        f"request field {name!r}: {value!r} is not UTF-8 text (a name in "
                        "another encoding, e.g. Latin-1, with its bytes shown as \\udcXX); "
                        + ("type the name in UTF-8" if name == "place" else
                           "rename the file (or folder) with UTF-8 characters"))

    @staticmethod
    def _local(name: str, value: str) -> str:
        if is_remote(value):
            return value
        p = Path(value).expanduser()
        if not p.exists():
            raise InputError(f"request field {name!r}: file {value} does not exist")
        if p.is_dir():  # every input is one file: a folder would only fail inside the job
            raise InputError(f"request field {name!r}: {value} is a folder, not a file; give "
                             "the file in it")
        if p.stat().st_size == 0:
            raise InputError(f"request field {name!r}: file {value} is empty (0 bytes)")
        return str(p.resolve())

    # ------------------------------------------------------------------ conversions
    @property
    def slug(self) -> str:
        """File/job-name-safe place name."""
        return slugify(self.place)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``PNA_REQUEST`` of the container).

        Returns
        -------
        dict
            Field name -> value.
        """
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The request as JSON text (sorted keys).

        Returns
        -------
        str
        """
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], check_files: bool = True) -> AnalysisRequest:
        """Build from a dict; unknown keys are an error.

        Parameters
        ----------
        data
            Field name -> value (a missing field takes its default).
        check_files
            ``False`` skips validation (a request read back from a store or manifest, validated
            when it was made).

        Returns
        -------
        AnalysisRequest

        Raises
        ------
        InputError
            An unknown field, a missing place or boundary, or a bad value (named).
        """
        unknown = set(data) - set(_REQUEST_FIELDS)
        if unknown:
            raise InputError(f"unknown request field(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(_REQUEST_FIELDS))}")
        full = {f.name: data.get(f.name, field_default(f)) for f in request_fields()}
        if check_files:
            return cls(**full)
        obj = cls.__new__(cls)
        for name, value in full.items():
            setattr(obj, name, value)
        return obj

    def input_locations(self) -> dict[str, str]:
        """Role -> location of every input (``jobs`` entries as ``jobs[0]``, ...).

        Returns
        -------
        dict
        """
        out = {k: getattr(self, k) for k in input_roles() if getattr(self, k)}
        out.update({f"jobs[{i}]": j for i, j in enumerate(self.jobs)})
        return out

    def to_params(self, output: str) -> Params:
        """The engine parameters of this request, writing to ``output``.

        Parameters
        ----------
        output
            Output folder of the run.

        Returns
        -------
        pna_engine.params.Params
        """
        return Params.from_dict({**self.to_dict(), "output": output})


def _request_dataclass() -> type:
    """:class:`AnalysisRequest`: ``place`` and ``boundary`` (required), then every other field
    of :func:`pna_engine.params.request_fields` with the engine's default."""
    specs: list[Any] = [("place", "str"), ("boundary", "str")]
    for f in request_fields():
        if f.name not in ("place", "boundary"):
            default = (field(default_factory=f.default_factory)
                       if f.default_factory is not dataclasses.MISSING else field(default=f.default))
            specs.append((f.name, f.type, default))
    return dataclasses.make_dataclass("AnalysisRequest", specs, bases=(_Request,),
                                      namespace={"__module__": __name__})


_REQUEST_FIELDS = tuple(f.name for f in request_fields())
AnalysisRequest = _request_dataclass()
AnalysisRequest.__doc__ = """One place to analyse. Validated on creation: a bad field raises
:class:`InputError` naming the field.

Its fields are the engine's request fields (:func:`pna_engine.params.request_fields`), with the
engine's defaults and rules; an option added to :class:`~pna_engine.params.Params` appears here.

Parameters
----------
place
    Human-readable place name (``"Helsinki demo"``); required.
boundary, osm, population
    Inputs as local paths or ``http(s)://`` / ``s3://`` URLs; ``osm`` and ``population``
    may be ``None`` (the engine then downloads or synthesises them).
jobs
    LODES files (US only).
country, state, state_fips, city_fips
    Where the place is (US mode iff the country is the United States).
city_speed_limit, state_speed_limit
    Residential default speeds, mph.
max_trip_distance
    Metres.
worldpop_year, lodes_year, offline, cache_dir, workers
    As the ``pna-engine run`` options of the same name.
"""


# --------------------------------------------------------------------------- many places
def _cell(v: Any) -> Any:
    if v is None:
        return None
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _resolve(base: Path, v: Any) -> Any:
    if v is None or is_url(str(v)):
        return v
    p = Path(str(v)).expanduser()
    return str(p if p.is_absolute() else (base / p))


def read_places(path: str | Path) -> list[AnalysisRequest]:
    """Read a list of requests from a CSV or a GeoPackage of places.

    CSV: one row per place with columns from :data:`PLACE_COLUMNS` (``place`` and ``boundary``
    required; ``jobs`` separated by ``;``; relative paths are relative to the CSV's folder).
    GeoPackage (or any vector file with polygons): one feature per place; its geometry is the
    boundary (written to ``outputs/places/``), its attributes give the other columns (``place``
    or ``name`` for the name).

    Parameters
    ----------
    path : str or Path
        A ``.csv`` (or ``.txt``) file, or a ``.gpkg``, ``.geojson``, ``.json``, ``.shp`` or
        ``.zip`` vector file with a CRS and polygon geometries.

    Returns
    -------
    list of AnalysisRequest
        One validated request per row or feature, in file order.

    Raises
    ------
    InputError
        Unreadable file, missing column, or a bad row (the message names row and field).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"places file {path} does not exist: check the path (a CSV or a "
                         "GeoPackage of places)")
    if path.is_dir():
        raise InputError(f"places file {path} is a folder: give the .csv or .gpkg file in it")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _read_places_csv(path)
    if suffix in VECTOR_SUFFIXES:
        return _read_places_vector(path)
    raise InputError(f"places file {path}: expected a .csv (columns place, boundary, ...) or a "
                     f"vector file of polygons ({', '.join(VECTOR_SUFFIXES)}), not "
                     f"{suffix or 'a file without an extension'}")


#: Vector files of places :func:`read_places` reads (one polygon feature per place).
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".zip")


def place_error(path: Path, where: str, exc: Exception) -> InputError:
    """One line for a bad row of a places file: the file, the row, the column, what to do.

    Parameters
    ----------
    path : Path
        The places file.
    where : str
        The row, e.g. ``row 3`` or ``feature 2 (North)``.
    exc : Exception
        The request's error (``request field 'x': why``).

    Returns
    -------
    InputError
        ``places file F, row N, column 'x': why; what to do``.
    """
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = re.match(r"request field '([^']+)': (.*)", msg)
    if m is None:
        return InputError(f"places file {path}, {where}: {msg}; fix that row")
    col, why = m.groups()
    if "does not exist" in why or "is a folder" in why or "is empty (0 bytes)" in why:
        todo = (f"fix the path in that cell (a relative path is relative to the folder of "
                f"{path.name}, {path.resolve().parent})")
    elif col == "place" and why.startswith("give a non-empty"):
        why, todo = "the place name is empty", "give every row a place name"
    elif col == "place" or "is not UTF-8 text" in why:  # the why says what to do
        return InputError(f"places file {path}, {where}, column {col!r}: {why}")
    elif why.startswith("is required"):
        why, todo = "is required", "fill that cell in"
    else:
        todo = "fix that cell, or leave it empty for the default"
    return InputError(f"places file {path}, {where}, column {col!r}: {why}; {todo}")


def _read_places_csv(path: Path) -> list[AnalysisRequest]:
    import warnings

    import pandas as pd

    try:
        with warnings.catch_warnings():
            # a row with more cells than the header: an error, not its first cell taken as
            # the index (it shifted every cell one column left) or cells silently dropped
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                             index_col=False, skip_blank_lines=False, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"places CSV {path} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start}): save it as CSV UTF-8") from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"places CSV {path} is empty: give a header row (place,boundary,...) "
                         "and one row per place") from exc
    except Exception as exc:  # pandas parser errors
        raise InputError(f"places CSV {path} is malformed ({str(exc).splitlines()[0]}): check "
                         "its quotes and that every row has as many cells as the header") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("place", "boundary") if c not in df.columns]
    if missing:
        sep = next((c for c in (";", "\t", "|") if len(df.columns) == 1
                    and c in str(df.columns[0])), None)
        hint = (f"it looks separated by {sep!r}: save it with commas" if sep else
                f"the header must name them; columns are {', '.join(PLACE_COLUMNS)}")
        raise InputError(f"places CSV {path} lacks column(s) {', '.join(missing)}: {hint}")
    unknown = [c for c in df.columns if c not in PLACE_COLUMNS]
    if unknown:
        raise InputError(f"places CSV {path} has unknown column(s) {', '.join(unknown)}: rename "
                         f"or remove them; allowed: {', '.join(PLACE_COLUMNS)}")
    # rows whose cells are all empty (blank lines, ',,,' from a spreadsheet) are not places;
    # the others keep their line numbers for the messages (header = row 1)
    filled = df.apply(lambda col: col.str.strip() != "").any(axis=1)
    df = df[filled]
    if df.empty:
        raise InputError(f"places CSV {path} has no rows: add one row per place under the "
                         "header")
    return _rows_to_requests(df.to_dict("records"), path, [int(i) + 2 for i in df.index])


def _rows_to_requests(rows: list[dict[str, Any]], path: Path,
                      numbers: list[int] | None = None) -> list[AnalysisRequest]:
    base = path.resolve().parent
    out = []
    first = 2 if path.suffix.lower() in (".csv", ".txt") else 1
    for i, row in zip(numbers or range(first, first + len(rows)), rows):
        kw = {k: _cell(v) for k, v in row.items() if k in PLACE_COLUMNS}
        kw = {k: v for k, v in kw.items() if v is not None}
        for role in input_roles():
            if role in kw:
                kw[role] = _resolve(base, kw[role])
        if "jobs" in kw:
            kw["jobs"] = [_resolve(base, j.strip()) for j in re.split(r"[;|]", str(kw["jobs"]))
                          if j.strip()]
        try:
            out.append(AnalysisRequest.from_dict(kw))
        except InputError as exc:
            where = (f"row {i}" if path.suffix.lower() in (".csv", ".txt") else
                     f"feature {i}" + (f" ({kw['place']})" if kw.get("place") else ""))
            raise place_error(path, where, exc) from exc
    return out


def read_polygon_layer(path: Path, what: str) -> Any:
    """The one layer of place polygons in a vector file, as a GeoDataFrame.

    A file with several layers (a GeoPackage with notes, points, ...) is read from its only
    polygon layer; with several polygon layers it is an error naming them (reading the first
    would silently drop the places of the others). GDAL's warnings are not printed: the caller
    turns every problem into one :class:`InputError` line.

    Parameters
    ----------
    path : Path
        The vector file.
    what : str
        How messages name it (``places file``, ``boundaries layer``).

    Returns
    -------
    geopandas.GeoDataFrame

    Raises
    ------
    InputError
        Unreadable, or several polygon layers.
    """
    import warnings

    import geopandas as gpd
    import pyogrio

    how = "save it as a GeoPackage or GeoJSON of polygons"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layers = [(str(n), str(t or "")) for n, t in pyogrio.list_layers(path)]
            layer = None
            if len(layers) > 1:
                polys = [n for n, t in layers if "polygon" in t.lower()]
                if len(polys) > 1:
                    raise InputError(
                        f"{what} {path} has {len(polys)} polygon layers "
                        f"({', '.join(polys)}): which holds the places is unclear; keep one "
                        "polygon layer of places (e.g. save that layer as its own file)")
                layer = polys[0] if polys else layers[0][0]
            gdf = gpd.read_file(path, layer=layer)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{what} {path} is unreadable ({str(exc).splitlines()[0]}): "
                         f"{how}") from exc
    return gdf


def _read_places_vector(path: Path) -> list[AnalysisRequest]:
    gdf = read_polygon_layer(path, "places file")
    if gdf.empty:
        raise InputError(f"places file {path} has no features: add one polygon per place")
    gdf.columns = [str(c).lower() if c != gdf.geometry.name else c for c in gdf.columns]
    if "place" not in gdf.columns and "name" in gdf.columns:
        gdf = gdf.rename(columns={"name": "place"})
    if "place" not in gdf.columns:
        raise InputError(f"places file {path} has no column 'place' (or 'name'): add one with "
                         f"each place's name; its columns are "
                         f"{', '.join(str(c) for c in gdf.columns if c != gdf.geometry.name)}")
    if gdf.crs is None:
        raise InputError(f"places file {path} has no CRS: save it with one (e.g. EPSG:4326)")
    for i, (geom, name) in enumerate(zip(gdf.geometry, gdf["place"]), start=1):
        kind = "no geometry" if geom is None or geom.is_empty else geom.geom_type
        if kind not in ("Polygon", "MultiPolygon"):
            label = f" ({name})" if isinstance(name, str) and name.strip() else ""
            raise InputError(f"places file {path}, feature {i}{label}, column "
                             f"{gdf.geometry.name!r}: {kind}, not a polygon; give every place "
                             "a polygon boundary")
    folder = outputs_dir() / "places"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    from pna_engine.atomic import atomic_path

    for _, feat in gdf.iterrows():  # one row per place: a handful of rows
        one = gdf.loc[[feat.name], ["place", gdf.geometry.name]].to_crs(4326)
        text = one.to_json()
        name = f"{slugify(str(feat['place']))}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
        dest = folder / f"{name}.geojson"
        if not dest.exists():
            with atomic_path(dest) as tmp:
                tmp.write_text(text, encoding="utf-8")
        row = {k: feat[k] for k in gdf.columns if k in PLACE_COLUMNS and k != "boundary"}
        row["boundary"] = str(dest)
        rows.append(row)
    return _rows_to_requests(rows, path)


# --------------------------------------------------------------------------- demo
DEMO_PLACE = "Helsinki demo"


def demo_request() -> AnalysisRequest:
    """The bundled demo place (central Helsinki, offline); inputs under ``outputs/demo-inputs/``.

    Returns
    -------
    AnalysisRequest
        An ``offline`` request whose inputs are prepared (written) on first use.

    Raises
    ------
    InputError
        The demo inputs are not installed (``pna_engine.demo`` missing: the ``demo`` extra).
    """
    try:
        from pna_engine.demo import prepare_demo_inputs
    except ImportError as exc:
        raise InputError("the demo inputs are not available (pna_engine.demo missing); install "
                         "the 'demo' extra: pip install 'pna[demo]'") from exc
    d = prepare_demo_inputs(outputs_dir() / "demo-inputs")
    known = {k: d[k] for k in ("max_trip_distance",) if d.get(k) is not None}
    return AnalysisRequest(
        place=d.get("place", DEMO_PLACE), boundary=str(d["boundary"]), osm=str(d["osm"]),
        population=str(d["population"]) if d.get("population") else None,
        country=d.get("country", "Finland"), city_speed_limit=d.get("city_speed_limit"),
        offline=True, **known)
