"""The place boundary (BNA-METHOD §2.1, §2.2).

:func:`load_boundary` reads a shapefile (plain or zipped), GeoJSON or GeoPackage in any CRS
(EPSG:4326 assumed when none is declared), checks that it is a non-empty polygon layer,
dissolves it to one MultiPolygon row and projects it to the output CRS: the WGS 84 UTM zone
containing the centre of its geographic bounding box (GeoPandas ``estimate_utm_crs``, as the
reference tool does). The dissolved WGS 84 geometry is kept in ``gdf.attrs["wgs84"]`` for clipping the OSM data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pna_engine.errors import InputError

WGS84 = "EPSG:4326"


def _read(path: Path) -> Any:
    import geopandas as gpd

    target = str(path)
    if path.suffix.lower() == ".zip":
        target = f"zip://{path}"
    try:
        return gpd.read_file(target)
    except Exception as exc:  # noqa: BLE001 - any GDAL failure is a bad input
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read the boundary file {path}: {first}; give a shapefile, zipped shapefile, "
            "GeoJSON or GeoPackage with a polygon layer"
        ) from None


def load_boundary(path: str | Path, params: Any = None) -> tuple[Any, Any]:
    """Read, check, dissolve and project the boundary.

    Parameters
    ----------
    path : str or Path
        Shapefile (``.shp`` or zipped ``.zip``), GeoJSON or GeoPackage.
    params : Params, optional
        Unused today (kept for the pipeline's uniform call).

    Returns
    -------
    (GeoDataFrame, pyproj.CRS)
        One row (column ``geometry``, a MultiPolygon) in the output CRS, and that CRS. The
        dissolved WGS 84 geometry is in ``gdf.attrs["wgs84"]`` (a shapely MultiPolygon).

    Raises
    ------
    InputError
        Missing or unreadable file, empty layer, or a layer that is not made of polygons.
    """
    import geopandas as gpd
    import shapely

    if path is None:
        raise InputError("no boundary given: pass --boundary with a polygon file")
    from pna_engine import download

    if download.is_remote(str(path)):
        path = download.fetch(str(path), params, what="the boundary file", option="--boundary")
    p = Path(str(path))
    if not p.exists():
        raise InputError(f"boundary file not found: {p}; check the --boundary path")
    gdf = _read(p)
    geoms = gdf.geometry.values if "geometry" in gdf else None
    if geoms is None or len(gdf) == 0:
        raise InputError(f"the boundary file {p} has no features; it must hold a polygon")
    geoms = shapely.force_2d(gdf.geometry.values[~gdf.geometry.isna().to_numpy()])
    geoms = geoms[~shapely.is_empty(geoms)]
    if len(geoms) == 0:
        raise InputError(f"the boundary file {p} has only empty geometries; it must hold a polygon")
    kinds = set(shapely.get_type_id(geoms).tolist())
    if not kinds <= {3, 6}:  # Polygon, MultiPolygon
        names = sorted({g.geom_type for g in geoms})
        raise InputError(
            f"the boundary file {p} holds {', '.join(names)} features, not polygons; "
            "give the place outline as a polygon layer"
        )
    crs = gdf.crs if gdf.crs is not None else WGS84
    wgs = gpd.GeoSeries(geoms, crs=crs).to_crs(WGS84)
    merged = shapely.union_all(shapely.make_valid(wgs.values))
    merged = _as_multipolygon(merged)
    if merged.is_empty or merged.area == 0:
        raise InputError(f"the boundary in {p} has no area; it must be a polygon")
    wgs_gdf = gpd.GeoDataFrame({"geometry": [merged]}, crs=WGS84)
    out_crs = utm_crs(*merged.bounds)
    out = wgs_gdf.to_crs(out_crs)
    out["geometry"] = [_as_multipolygon(g) for g in out.geometry.values]
    out.attrs["wgs84"] = merged
    out.attrs["source"] = str(p)
    return out, out_crs


def utm_crs(minx: float, miny: float, maxx: float, maxy: float) -> Any:
    """The WGS 84 UTM zone containing the centre of a geographic bounding box (§2.2).

    Same result as GeoPandas ``estimate_utm_crs`` (which the reference uses: the first UTM
    zone, lowest EPSG code, whose area of use contains the centre) without its slow database
    query. The areas of use are closed: a centre exactly on a zone edge (a multiple of 6
    degrees) belongs to the western zone, one on the equator to the northern one.
    """
    import math

    from pyproj import CRS

    lon = (minx + maxx) / 2.0
    lat = (miny + maxy) / 2.0
    zone = min(max(math.ceil((lon + 180.0) / 6.0), 1), 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _as_multipolygon(g: Any) -> Any:
    """Keep only the polygonal parts of ``g`` as one MultiPolygon."""
    import shapely
    from shapely.geometry import MultiPolygon

    if g.geom_type == "MultiPolygon":
        return g
    if g.geom_type == "Polygon":
        return MultiPolygon([g])
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys: list[Any] = []
    for p in parts:
        polys.extend(shapely.get_parts(p).tolist() if p.geom_type == "MultiPolygon" else [p])
    return MultiPolygon(polys)
