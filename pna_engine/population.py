"""Census blocks and population (BNA-METHOD §2.5): table ``neighborhood_census_blocks``.

Sources, in the reference tool's order:

* ``--population`` file (path or URL): TIGER 2020 blocks (``GEOID20``/``POP20``/``ALAND20``),
  TIGER 2010 blocks (``BLOCKID10``/``POP10``), or any layer with those fields, as a zipped
  shapefile, shapefile or GeoPackage; a GeoTIFF is read as a WorldPop raster.
* US without a file: the state's TIGER/Line 2020 tabulation blocks (downloaded).
* Non-US without a file: the WorldPop 1 km constrained raster of the country (R2025A,
  ``params.worldpop_year`` or the current year), polygonised as the reference does; when the
  country is unknown or the raster cannot be downloaded (offline), a synthetic grid of
  ``params.block_size`` Web-Mercator units with ``params.block_population`` people per cell.

Columns are normalised to lowercase (``geoid20``, ``pop20``, ``aland20``; 2010 ids and
populations are renamed to those names); every other source attribute is kept for the export.

Retention (bsa): a block is kept if it intersects the boundary and at least 50 % of its area
lies inside it; US runs then drop all-water blocks (``aland20 = 0``). The run fails if the
retained population, truncated to an integer as the reference does, is 0.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pna_engine.errors import InputError, OfflineError

if TYPE_CHECKING:
    from pna_engine.state import RunState

#: Share of a block's area that must lie inside the boundary for the block to be kept.
MIN_SHARE_INSIDE = 0.5
WEB_MERCATOR = "EPSG:3857"


# --------------------------------------------------------------------------- entry point
def load_blocks(s: RunState) -> Any:
    """Census blocks retained for the run, in the output CRS (``s.crs``).

    Records ``s.inputs["population"]``, ``s.counts["blocks"]`` and ``s.counts["population"]``;
    adds a note when the population is synthetic.

    Parameters
    ----------
    s
        The run's state; reads ``s.params`` (population, country, state), ``s.boundary``, ``s.crs``.

    Returns
    -------
    geopandas.GeoDataFrame
        The retained blocks (``geoid20``, ``pop20``, geometry).

    Raises
    ------
    InputError
        Unreadable file, missing id/population fields, no block overlapping the boundary, or a
        retained population of 0.
    """
    from pna_engine import download

    params = s.params
    us = params.is_us
    boundary = s.boundary.to_crs(s.crs)
    if params.population:
        path = download.fetch(params.population, params, what="the population file",
                              option="--population")
        s.inputs["population"] = str(path)
        blocks = read_blocks(path)
        source = str(params.population)
    elif us:
        url = download.tiger_blocks_url(download.state_fips(params))
        path = download.fetch(url, params, what="the TIGER 2020 census blocks",
                              option="--population")
        s.inputs["population"] = str(path)
        blocks = read_blocks(path)
        source = url
    else:
        blocks, source = _non_us_blocks(s, boundary)
    blocks = blocks.to_crs(s.crs)
    kept = select_blocks(blocks, boundary, us=us, source=source)
    s.counts["blocks"] = int(len(kept))
    s.counts["population"] = float(kept["pop20"].sum())
    return kept


def _non_us_blocks(s: RunState, boundary: Any) -> tuple[Any, str]:
    from pna_engine import download

    params = s.params
    iso3 = params.iso3
    if iso3 is not None:
        year = params.worldpop_year or _dt.date.today().year
        url = download.worldpop_url(iso3, year)
        try:
            path = download.fetch(url, params, what="the WorldPop population raster",
                                  option="--population")
        except (OfflineError, InputError) as exc:
            s.notes.append(
                f"population: WorldPop raster unavailable ({exc}); using a SYNTHETIC grid of "
                f"{params.block_size:g} Web-Mercator units with {params.block_population} "
                "people per cell - pass --population for real data")
        else:
            s.inputs["population"] = str(path)
            return worldpop_blocks(path, boundary), url
    else:
        s.notes.append(
            f"population: country {params.country!r} unknown; using a SYNTHETIC grid of "
            f"{params.block_size:g} Web-Mercator units with {params.block_population} people "
            "per cell (as the reference tool does) - pass --population for real data")
    grid = synthetic_grid(boundary, params.block_size, params.block_population)
    return grid, "synthetic grid"


# --------------------------------------------------------------------------- readers
_ID_FIELDS = ("geoid20", "blockid10")
_POP_FIELDS = ("pop20", "pop10")


def read_blocks(path: str | Path) -> Any:
    """Read a census block layer and normalise its columns.

    Accepts a zipped shapefile, a shapefile, a GeoPackage or anything GDAL reads, and a GeoTIFF
    (WorldPop raster, polygonised). Returns a GeoDataFrame with lowercase columns where
    ``geoid20`` (str) and ``pop20`` (float) exist; ``aland20`` when the source has it.
    """
    import geopandas as gpd

    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        return worldpop_blocks(path, None)
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # GDAL's message is the most useful one here
        raise InputError(f"cannot read the population file {path}: {exc}") from exc
    return normalise_fields(gdf, str(path))


def normalise_fields(gdf: Any, source: str) -> Any:
    """Lowercase the columns; rename 2010 fields (``blockid10``, ``pop10``) to the 2020 names."""
    geom_name = gdf.geometry.name
    rename = {c: c.lower() for c in gdf.columns if c != geom_name}
    gdf = gdf.rename(columns=rename)
    cols = set(gdf.columns)
    id_col = next((c for c in _ID_FIELDS if c in cols), None)
    pop_col = next((c for c in _POP_FIELDS if c in cols), None)
    if id_col is None or pop_col is None:
        found = ", ".join(c for c in rename.values()) or "none"
        raise InputError(
            f"the population file {source} lacks the block id / population fields: found "
            f"[{found}]; expected GEOID20 and POP20 (TIGER 2020) or BLOCKID10 and POP10 "
            "(TIGER 2010)")
    gdf = gdf.rename(columns={id_col: "geoid20", pop_col: "pop20"})
    if "gid" not in gdf.columns:  # row number in the source, as the reference's import adds it
        gdf.insert(0, "gid", np.arange(1, len(gdf) + 1, dtype=np.int64))
    import pandas as pd

    if pd.api.types.is_numeric_dtype(gdf["geoid20"].dtype):
        # block ids stored as numbers lost their leading zeros: census block ids have 15 digits
        ids = gdf["geoid20"].to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isfinite(ids) | (ids < 0) | (ids != np.floor(ids))
        if bad.any():
            i = int(bad.argmax())
            raise InputError(f"the population file {source}, feature {i + 1}: the block id "
                             f"{id_col.upper()} is {gdf['geoid20'].iloc[i]!r}, expected a "
                             "census block id")
        gdf["geoid20"] = gdf["geoid20"].astype("int64").astype(str).str.zfill(15)
    gdf["geoid20"] = gdf["geoid20"].astype(str)
    gdf["pop20"] = _population_values(gdf["pop20"], gdf["geoid20"], source, pop_col)
    if gdf.crs is None:  # the reference declares every input as EPSG:4326
        gdf = gdf.set_crs(4326)
    return gdf


def _population_values(values: Any, ids: Any, source: str, field: str) -> Any:
    """The population field as float64 (empty = 0, as the reference's import); an
    :class:`InputError` naming the feature when a value is not a finite number >= 0."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        num = values.astype("float64")
        bad = ~np.isfinite(num.to_numpy()) & num.notna().to_numpy()
    else:
        num = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = (num.isna() & values.notna()).to_numpy() | ~np.isfinite(num.fillna(0).to_numpy())
    bad |= num.fillna(0).to_numpy() < 0
    if bad.any():
        i = int(bad.argmax())
        raise InputError(
            f"the population file {source}, feature {i + 1} (block {ids.iloc[i]}): "
            f"{field.upper()} is {values.iloc[i]!r}, expected a number of people >= 0; fix the "
            "layer or download it again")
    return num.fillna(0.0)


# --------------------------------------------------------------------------- selection
def select_blocks(blocks: Any, boundary: Any, *, us: bool, source: str = "population") -> Any:
    """Blocks kept by the reference: intersecting the boundary with >= 50 % of their area
    inside; US: without all-water blocks (``aland20 = 0``). Same CRS for both inputs.

    Raises
    ------
    InputError
        No block overlaps the boundary, or the retained population is 0.
    """
    import shapely

    bnd = shapely.union_all(np.asarray(boundary.geometry.values))
    geoms = np.asarray(blocks.geometry.values)
    n_read = len(blocks)
    shapely.prepare(bnd)
    hit = shapely.intersects(geoms, bnd)
    if not hit.any():
        raise InputError(
            f"no census block of {source} overlaps the boundary ({n_read} blocks read); "
            "check that the population file covers the place and has a correct CRS")
    share = np.zeros(n_read)
    idx = np.flatnonzero(hit)
    inside = shapely.contains_properly(bnd, geoms[idx])  # wholly inside: share 1, no overlay
    share[idx[inside]] = 1.0
    edge = idx[~inside]
    g = geoms[edge]
    area = shapely.area(g)
    with np.errstate(invalid="ignore", divide="ignore"):
        share[edge] = np.where(area > 0, shapely.area(shapely.intersection(g, bnd)) / area, 0.0)
    keep = hit & (share >= MIN_SHARE_INSIDE)
    if us and "aland20" in blocks.columns:
        aland = blocks["aland20"].astype("float64").to_numpy()
        keep &= ~(aland == 0)
    kept = blocks.loc[keep].reset_index(drop=True)
    if len(kept) == 0:
        raise InputError(
            f"no census block of {source} lies at least half inside the boundary "
            f"({int(hit.sum())} touch it); use a larger boundary or finer blocks")
    kept = kept.set_geometry(_as_multipolygons(np.asarray(kept.geometry.values)), crs=blocks.crs)
    total = float(kept["pop20"].sum())
    if int(total) == 0:  # the reference stops when int(SUM(pop20)) == 0: a total below 1 too
        raise InputError(
            f"the {len(kept)} census blocks retained inside the boundary have a total "
            f"population of {total:g} (less than 1 person); check the population file (the "
            "analysis needs inhabitants)")
    return kept


def _as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    """Force polygons to MultiPolygons (the reference stores blocks as MultiPolygon)."""
    import shapely

    out = geoms.copy()
    single = shapely.get_type_id(out) == 3
    if single.any():
        idx = np.flatnonzero(single)
        out[idx] = shapely.multipolygons(out[idx], indices=np.arange(len(idx)))
    return out


# --------------------------------------------------------------------------- generated blocks
def _random_ids(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct ids of 15 lowercase letters (the reference uses random ones; ours are
    deterministic for reproducible runs)."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype="S1")
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        chunk = letters[rng.integers(0, 26, size=(n - len(ids), 15))]
        for row in chunk.view("S15").ravel():
            k = row.decode()
            if k not in seen:
                seen.add(k)
                ids.append(k)
    return ids


def synthetic_grid(boundary: Any, block_size: float, block_population: int) -> Any:
    """The reference's fallback population: square cells over the boundary (§2.5).

    The boundary is projected to Web Mercator; columns start at its bbox min-x and go by
    ``block_size`` while the start is < max-x (rows likewise); a cell is kept when it
    intersects the boundary. ``POP20 = block_population``, ``GEOID20`` = 15 letters. Returned in
    the boundary's CRS.
    """
    import geopandas as gpd
    import shapely

    if not block_size > 0:
        raise InputError(f"block size must be positive, got {block_size!r}")
    bm = boundary.to_crs(WEB_MERCATOR)
    bnd = shapely.union_all(np.asarray(bm.geometry.values))
    xmin, ymin, xmax, ymax = bnd.bounds
    xs = xmin + block_size * np.arange(int(np.ceil((xmax - xmin) / block_size)) or 1)
    ys = ymin + block_size * np.arange(int(np.ceil((ymax - ymin) / block_size)) or 1)
    xs, ys = xs[xs < xmax] if xmax > xmin else xs, ys[ys < ymax] if ymax > ymin else ys
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    gx, gy = gx.ravel(), gy.ravel()
    cells = shapely.box(gx, gy, gx + block_size, gy + block_size)
    shapely.prepare(bnd)
    cells = cells[shapely.intersects(cells, bnd)]
    grid = gpd.GeoDataFrame(
        {"GEOID20": _random_ids(len(cells)), "POP20": np.full(len(cells), block_population)},
        geometry=cells, crs=WEB_MERCATOR,
    ).to_crs(boundary.crs)
    return normalise_fields(grid, "synthetic grid")


def worldpop_blocks(path: str | Path, boundary: Any | None) -> Any:
    """Polygonise a WorldPop raster as the reference does (§2.5).

    Connected groups of pixels (4-connectivity) with the same value become one polygon; no-data
    pixels are skipped (pixels <= 0 when the raster has no no-data value). ``POP20`` = the pixel
    value, ``GEOID20`` = 15 letters. With a ``boundary`` only a window around it is read
    (10 pixels of margin) - the reference polygonises the whole country.
    """
    import geopandas as gpd
    import rasterio
    import rasterio.features
    import rasterio.windows
    import shapely

    try:
        src = rasterio.open(path)
    except Exception as exc:
        raise InputError(f"cannot read the population raster {path}: {exc}") from exc
    with src:
        window = None
        if boundary is not None:
            b = boundary.to_crs(src.crs).total_bounds
            w = rasterio.windows.from_bounds(*b, transform=src.transform)
            m = 10
            col0 = max(int(np.floor(w.col_off)) - m, 0)
            row0 = max(int(np.floor(w.row_off)) - m, 0)
            col1 = min(int(np.ceil(w.col_off + w.width)) + m, src.width)
            row1 = min(int(np.ceil(w.row_off + w.height)) + m, src.height)
            if col1 <= col0 or row1 <= row0:
                raise InputError(f"the population raster {path} does not cover the boundary")
            window = rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)
        data = src.read(1, window=window)
        transform = src.window_transform(window) if window is not None else src.transform
        nodata = src.nodata
        crs = src.crs
    valid = (data != nodata) if nodata is not None else (data > 0)
    if nodata is not None and np.isnan(nodata):
        valid = ~np.isnan(data)
    geoms, values = [], []
    for geom, value in rasterio.features.shapes(data, mask=valid, connectivity=4,
                                                transform=transform):
        geoms.append(shapely.geometry.shape(geom))
        values.append(float(value))
    gdf = gpd.GeoDataFrame({"GEOID20": _random_ids(len(geoms)), "POP20": values},
                           geometry=geoms, crs=crs or "EPSG:4326")
    return normalise_fields(gdf, str(path))
