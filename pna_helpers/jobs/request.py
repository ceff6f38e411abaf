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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pna_engine.errors import InputError
from pna_engine.params import DEFAULT_MAX_TRIP_DISTANCE
from pna_helpers.paths import outputs_dir

URL_SCHEMES = ("http://", "https://", "s3://")
#: Columns of a places CSV / GeoPackage (``place`` and ``boundary`` are required in a CSV).
PLACE_COLUMNS = ("place", "boundary", "osm", "population", "jobs", "country", "state",
                 "state_fips", "city_fips", "city_speed_limit", "state_speed_limit",
                 "max_trip_distance", "offline")


def is_url(value: str) -> bool:
    """True for ``http(s)://`` and ``s3://`` locations."""
    return value.lower().startswith(URL_SCHEMES)


def slugify(text: str) -> str:
    """A name safe for files, Batch job names and S3 keys (``Helsinki demo`` -> ``helsinki-demo``)."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return s[:100] or "place"


@dataclass
class AnalysisRequest:
    """One place to analyse. Validated on creation: a bad field raises :class:`InputError`
    naming the field.

    Parameters
    ----------
    place
        Human-readable place name (``"Helsinki demo"``).
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
    offline
        Pass ``--offline`` to the engine (never download).
    """

    place: str
    boundary: str
    osm: str | None = None
    population: str | None = None
    jobs: list[str] = field(default_factory=list)
    country: str = "United States"
    state: str | None = None
    state_fips: str | None = None
    city_fips: str | None = None
    city_speed_limit: int | None = None
    state_speed_limit: int | None = None
    max_trip_distance: float = DEFAULT_MAX_TRIP_DISTANCE
    offline: bool = False

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Normalise and check every field; raise :class:`InputError` naming the bad one."""
        def bad(name: str, why: str) -> InputError:
            return InputError(f"request field {name!r}: {why}")

        if not isinstance(self.place, str) or not self.place.strip():
            raise bad("place", "give a non-empty place name")
        self.place = self.place.strip()
        for name in ("boundary", "osm", "population"):
            v = getattr(self, name)
            if v is None or (isinstance(v, str) and not v.strip()):
                if name == "boundary":
                    raise bad("boundary", "a boundary file (path or URL) is required")
                setattr(self, name, None)
                continue
            setattr(self, name, self._location(name, v))
        if isinstance(self.jobs, str):
            self.jobs = [j for j in re.split(r"[;|]", self.jobs) if j.strip()]
        self.jobs = [self._location("jobs", j) for j in (self.jobs or [])]
        if not isinstance(self.country, str) or not self.country.strip():
            raise bad("country", "give a country name or ISO code")
        self.country = self.country.strip()
        if self.state is not None:
            st = str(self.state).strip().upper()
            if not re.fullmatch(r"[A-Z]{2}", st):
                raise bad("state", f"expected a 2-letter US postal code like MA, got {self.state!r}")
            self.state = st
        for name, digits in (("state_fips", 2), ("city_fips", 7)):
            v = getattr(self, name)
            if v is None or v == "":
                setattr(self, name, None)
                continue
            s = str(v).strip()
            if s.isdigit() and len(s) < digits:
                s = s.zfill(digits)
            if not re.fullmatch(rf"\d{{{digits}}}", s):
                raise bad(name, f"expected {digits} digits, got {v!r}")
            setattr(self, name, s)
        for name in ("city_speed_limit", "state_speed_limit"):
            v = getattr(self, name)
            if v is None or v == "":
                setattr(self, name, None)
                continue
            try:
                n = int(float(v))
            except (TypeError, ValueError):
                raise bad(name, f"expected a speed in mph, got {v!r}") from None
            if not 0 < n < 200:
                raise bad(name, f"expected a speed in mph (1-199), got {v!r}")
            setattr(self, name, n)
        try:
            self.max_trip_distance = float(self.max_trip_distance)
        except (TypeError, ValueError):
            raise bad("max_trip_distance", f"expected metres, got {self.max_trip_distance!r}") from None
        if not self.max_trip_distance > 0:
            raise bad("max_trip_distance", f"must be positive metres, got {self.max_trip_distance}")
        if isinstance(self.offline, str):
            self.offline = self.offline.strip().lower() in ("1", "true", "yes", "y")
        self.offline = bool(self.offline)

    @staticmethod
    def _location(name: str, value: Any) -> str:
        if not isinstance(value, str | Path):
            raise InputError(f"request field {name!r}: expected a path or URL, got {value!r}")
        v = str(value).strip()
        if is_url(v):
            if v.lower().startswith("s3://") and not re.match(r"s3://[^/]+/.+", v):
                raise InputError(f"request field {name!r}: bad S3 URI {v!r}, expected "
                                 "s3://bucket/key")
            return v
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", v):
            raise InputError(f"request field {name!r}: unsupported URL scheme in {v!r}; use a "
                             "path, http(s):// or s3://")
        p = Path(v).expanduser()
        if not p.exists():
            raise InputError(f"request field {name!r}: file {v} does not exist")
        return str(p.resolve())

    # ------------------------------------------------------------------ conversions
    @property
    def slug(self) -> str:
        """File/job-name-safe place name."""
        return slugify(self.place)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``PNA_REQUEST`` of the container)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], check_files: bool = True) -> AnalysisRequest:
        """Build from a dict; unknown keys are an error. ``check_files=False`` skips the
        existence check of local paths (a request read back from a store or manifest)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise InputError(f"unknown request field(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(names))}")
        if "place" not in data or "boundary" not in data:
            raise InputError("a request needs at least 'place' and 'boundary'")
        if check_files:
            return cls(**data)
        obj = cls.__new__(cls)
        for f in dataclasses.fields(cls):
            default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                       else f.default)
            setattr(obj, f.name, data.get(f.name, default))
        return obj

    def input_locations(self) -> dict[str, str]:
        """Role -> location of every input (``jobs`` entries as ``jobs[0]``, ...)."""
        out = {k: getattr(self, k) for k in ("boundary", "osm", "population") if getattr(self, k)}
        out.update({f"jobs[{i}]": j for i, j in enumerate(self.jobs)})
        return out

    def engine_args(self, output: str, inputs: dict[str, str] | None = None) -> list[str]:
        """Arguments of ``pna-engine run`` for this request (the container builds the same).

        ``inputs`` replaces input locations by role (fetched local copies)."""
        from pna_engine.jobrunner import engine_args

        return engine_args(self.to_dict(), output, inputs)


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

    Raises
    ------
    InputError
        Unreadable file, missing column, or a bad row (the message names row and field).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"places file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _read_places_csv(path)
    if suffix in (".gpkg", ".geojson", ".json", ".shp", ".zip"):
        return _read_places_vector(path)
    raise InputError(f"places file {path}: expected a .csv or a .gpkg of places")


def _read_places_csv(path: Path) -> list[AnalysisRequest]:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # pandas parser errors, encoding errors
        raise InputError(f"places CSV {path} is malformed ({str(exc).splitlines()[0]})") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("place", "boundary") if c not in df.columns]
    if missing:
        raise InputError(f"places CSV {path} lacks column(s) {', '.join(missing)}; columns are "
                         f"{', '.join(PLACE_COLUMNS)}")
    unknown = [c for c in df.columns if c not in PLACE_COLUMNS]
    if unknown:
        raise InputError(f"places CSV {path} has unknown column(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(PLACE_COLUMNS)}")
    if df.empty:
        raise InputError(f"places CSV {path} has no rows")
    return _rows_to_requests(df.to_dict("records"), path)


def _rows_to_requests(rows: list[dict[str, Any]], path: Path) -> list[AnalysisRequest]:
    base = path.resolve().parent
    out = []
    for i, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        kw = {k: _cell(v) for k, v in row.items() if k in PLACE_COLUMNS}
        kw = {k: v for k, v in kw.items() if v is not None}
        for role in ("boundary", "osm", "population"):
            if role in kw:
                kw[role] = _resolve(base, kw[role])
        if "jobs" in kw:
            kw["jobs"] = [_resolve(base, j.strip()) for j in str(kw["jobs"]).split(";") if j.strip()]
        try:
            out.append(AnalysisRequest(**kw))
        except (InputError, TypeError) as exc:
            where = "row" if path.suffix.lower() == ".csv" else "feature"
            raise InputError(f"{path.name} {where} {i}: {exc}") from exc
    return out


def _read_places_vector(path: Path) -> list[AnalysisRequest]:
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:
        raise InputError(f"places file {path} is unreadable ({str(exc).splitlines()[0]})") from exc
    if gdf.empty:
        raise InputError(f"places file {path} has no features")
    gdf.columns = [str(c).lower() if c != gdf.geometry.name else c for c in gdf.columns]
    if "place" not in gdf.columns and "name" in gdf.columns:
        gdf = gdf.rename(columns={"name": "place"})
    if "place" not in gdf.columns:
        raise InputError(f"places file {path} needs a 'place' (or 'name') attribute")
    if gdf.crs is None:
        raise InputError(f"places file {path} has no CRS; save it with one (e.g. EPSG:4326)")
    gtypes = set(gdf.geom_type.dropna())
    if not gtypes or not gtypes <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"places file {path}: every place needs a polygon boundary, found "
                         f"{', '.join(sorted(gtypes)) or 'no geometry'}")
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
    """The bundled demo place (central Helsinki, offline); inputs under ``outputs/demo-inputs/``."""
    try:
        from pna_engine.demo import prepare_demo_inputs
    except ImportError as exc:
        raise InputError("the demo inputs are not available (pna_engine.demo missing); install "
                         "the 'demo' extra: pip install 'pna[demo]'") from exc
    d = prepare_demo_inputs(outputs_dir() / "demo-inputs")
    return AnalysisRequest(
        place=d.get("place", DEMO_PLACE), boundary=str(d["boundary"]), osm=str(d["osm"]),
        population=str(d["population"]) if d.get("population") else None,
        country=d.get("country", "Finland"), city_speed_limit=d.get("city_speed_limit"),
        max_trip_distance=d.get("max_trip_distance", DEFAULT_MAX_TRIP_DISTANCE), offline=True,
    )
