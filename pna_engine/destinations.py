"""Destinations per category (BNA-METHOD §9): tables ``neighborhood_<category>``.

Inputs are the OSM point and polygon tables (``s.osm.points``, ``s.osm.polygons``: output CRS,
``osm_id`` plus one column per OSM tag key, NULL = tag absent) and the retained census blocks.
Each category is built by one of four constructions (§9.2):

* **clustered** (colleges, community centres, dentists, doctors, hospitals, parks, pharmacies,
  universities): matching polygons grouped by single-linkage clustering (distance <= tolerance);
  one destination per group (union, centroid); then every matching point not inside one of
  those polygons is its own destination (osm_id, name). Quirk B3: for dentists, doctors,
  hospitals and pharmacies the ``amenity`` points are added even inside a polygon.
* **retail**: polygons and 10 m circles around shop points, clustered together (50 m).
* **individual** (schools, social services, supermarkets, transit): one destination per polygon,
  polygons contained in another one deleted (quirk B14: identical polygons both deleted), then
  the points not inside a remaining polygon (schools, social services, supermarkets).
* **transit points**: matching points farther than 75 m from every transit polygon, clustered
  (75 m), one destination per cluster at the centroid of its points.

``blockid20`` = ids of the retained blocks intersecting the destination polygon or its point
(retail: polygon only), in block order (§9.3). ``pop_low_stress``/``pop_high_stress``/
``pop_score`` are left empty here and filled by the scores phase (§10.4).

Every table is a GeoDataFrame with columns ``id, blockid20, [osm_id, <name column>],
pop_low_stress, pop_high_stress, pop_score, geom_pt, geom_poly`` (active geometry ``geom_pt``),
in the output CRS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pna_engine.state import RunState

#: Categories in the reference's order of export.
CATEGORIES: tuple[str, ...] = (
    "colleges", "community_centers", "dentists", "doctors", "hospitals", "parks",
    "pharmacies", "retail", "schools", "social_services", "supermarkets", "transit",
    "universities",
)

RETAIL_POINT_RADIUS = 10.0

Mask = Callable[[Any], np.ndarray]


# --------------------------------------------------------------------------- tag predicates
def _col(df: Any, key: str) -> Any:
    import pandas as pd

    if key in df.columns:
        return df[key]
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def tag_in(key: str, *values: str) -> Mask:
    """``key`` equals one of ``values`` (NULL is not equal to anything)."""
    return lambda df: _col(df, key).isin(values).to_numpy(dtype=bool)


def tag_present_not_in(key: str, *values: str) -> Mask:
    """``key`` is set and not one of ``values``."""
    return lambda df: (_col(df, key).notna() & ~_col(df, key).isin(values)).to_numpy(dtype=bool)


def any_of(*masks: Mask) -> Mask:
    return lambda df: np.logical_or.reduce([m(df) for m in masks]) if masks else np.zeros(
        len(df), bool)


def transit_mask(null_exclusion: bool) -> Mask:
    """bsa's transit filter (§9.1) with SQL NULL semantics in the ``public_transport`` clause
    when ``null_exclusion`` (quirk B6)."""

    def mask(df: Any) -> np.ndarray:
        amenity = _col(df, "amenity")
        railway = _col(df, "railway")
        station = _col(df, "station")
        pt = _col(df, "public_transport")
        a = amenity.isin(["bus_station", "ferry_terminal"]).to_numpy(dtype=bool)
        rail_station = railway.isin(["station"]).to_numpy(dtype=bool)
        miniature = station.isin(["miniature"]).to_numpy(dtype=bool)
        b = rail_station & ~miniature
        pt_station = pt.isin(["station"]).to_numpy(dtype=bool)
        if null_exclusion:
            # NOT(railway='station' AND station='miniature') is true only when one side is
            # known to be false: railway set and != station, or station set and != miniature.
            not_both = ((railway.notna() & ~railway.isin(["station"])).to_numpy(dtype=bool)
                        | (station.notna() & ~station.isin(["miniature"])).to_numpy(dtype=bool))
        else:
            not_both = ~(rail_station & miniature)
        return a | b | (pt_station & not_both)

    return mask


@dataclass(frozen=True)
class Category:
    """How one destination table is built."""

    name: str
    kind: str  # "clustered", "individual", "retail", "transit"
    name_column: str | None
    #: polygon and point filter (the first part of the reference's point filter for B3)
    primary: Mask
    #: second part of the filter (B3 categories only: the healthcare / shop=chemist part)
    secondary: Mask | None = None
    tolerance: float = 0.0


def categories(quirks: Any) -> dict[str, Category]:
    """The 13 categories of §9.1, with the quirk switches applied."""
    c = Category
    return {
        "colleges": c("colleges", "clustered", "college_name", tag_in("amenity", "college"),
                      tolerance=100),
        "community_centers": c("community_centers", "clustered", "center_name",
                               tag_in("amenity", "community_centre", "community_center"),
                               tolerance=50),
        "dentists": c("dentists", "clustered", "dentists_name", tag_in("amenity", "dentist"),
                      tag_in("healthcare", "dentist"), tolerance=50),
        "doctors": c("doctors", "clustered", "doctors_name",
                     tag_in("amenity", "clinic", "doctors"),
                     tag_in("healthcare", "doctor", "doctors", "clinic"), tolerance=50),
        "hospitals": c("hospitals", "clustered", "hospital_name",
                       tag_in("amenity", "hospitals", "hospital"),
                       tag_in("healthcare", "hospital"), tolerance=50),
        "parks": c("parks", "clustered", "park_name",
                   any_of(tag_in("amenity", "park"),
                          tag_in("leisure", "park", "nature_reserve", "playground")),
                   tolerance=50),
        "pharmacies": c("pharmacies", "clustered", "pharmacy_name",
                        tag_in("amenity", "pharmacy"), tag_in("shop", "chemist"), tolerance=50),
        "retail": c("retail", "retail", None,
                    any_of(tag_in("landuse", "retail"), tag_in("building", "retail"),
                           tag_present_not_in("shop", "no", "supermarket")),
                    tag_present_not_in("shop", "no", "supermarket"), tolerance=50),
        "schools": c("schools", "individual", "school_name",
                     tag_in("amenity", "school", "kindergarten")),
        "social_services": c("social_services", "individual", "service_name",
                             tag_in("amenity", "social_facility")),
        "supermarkets": c("supermarkets", "individual", "supermarket_name",
                          tag_in("shop", "supermarket")),
        "transit": c("transit", "transit", "transit_name",
                     transit_mask(bool(quirks.transit_null_exclusion)), tolerance=75),
        "universities": c("universities", "clustered", "college_name",
                          tag_in("amenity", "university"), tolerance=150),
    }


# --------------------------------------------------------------------------- geometry helpers
def cluster_labels(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Single-linkage clusters (``ST_ClusterWithin``): two geometries at distance <= tolerance
    are in the same cluster, transitively. Labels are numbered by first member."""
    import scipy.sparse as sp
    import shapely
    from scipy.sparse.csgraph import connected_components

    n = len(geoms)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="dwithin", distance=tolerance)
    graph = sp.coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels]


def _union_by_label(polys: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``ST_Multi(ST_Buffer(collection of the group, 0))`` per label, in label order."""
    import shapely

    if len(polys) == 0:
        return np.empty(0, dtype=object)
    order = np.argsort(labels, kind="stable")
    multi = shapely.multipolygons(polys[order], indices=labels[order])
    return _force_multi(shapely.buffer(multi, 0))


def _force_multi(geoms: np.ndarray) -> np.ndarray:
    import shapely

    out = np.asarray(geoms, dtype=object).copy()
    single = np.flatnonzero(shapely.get_type_id(out) == 3)
    if len(single):
        out[single] = shapely.multipolygons(out[single], indices=np.arange(len(single)))
    return out


def _polygons(table: Any) -> Any:
    """Polygon rows as single polygons (osm2pgsql stores one row per part)."""
    import shapely

    if table is None or len(table) == 0:
        return table
    g = np.asarray(table.geometry.values)
    keep = ~shapely.is_empty(g) & np.isin(shapely.get_type_id(g), (3, 6))
    table = table.loc[keep]
    if (shapely.get_type_id(np.asarray(table.geometry.values)) == 6).any():
        table = table.explode(index_parts=False)
    return table.reset_index(drop=True)


def _points(table: Any) -> Any:
    import shapely

    if table is None or len(table) == 0:
        return table
    g = np.asarray(table.geometry.values)
    keep = ~shapely.is_empty(g) & (shapely.get_type_id(g) == 0)
    return table.loc[keep].reset_index(drop=True)


def _intersects_any(points: np.ndarray, polys: np.ndarray, distance: float | None = None
                    ) -> np.ndarray:
    """For each point: does it intersect (or lie within ``distance`` of) any polygon?"""
    import shapely

    out = np.zeros(len(points), dtype=bool)
    polys = polys[~shapely.is_missing(polys)] if len(polys) else polys
    if len(points) == 0 or len(polys) == 0:
        return out
    tree = shapely.STRtree(polys)
    if distance is None:
        idx, _ = tree.query(points, predicate="intersects")
    else:
        idx, _ = tree.query(points, predicate="dwithin", distance=distance)
    out[np.unique(idx)] = True
    return out


def _contained_mask(polys: np.ndarray, identical_both_deleted: bool) -> np.ndarray:
    """Polygons contained (``ST_Contains``) in another polygon of the same table."""
    import shapely

    n = len(polys)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    tree = shapely.STRtree(polys)
    container, inner = tree.query(polys, predicate="contains")
    other = container != inner
    container, inner = container[other], inner[other]
    if not identical_both_deleted and len(inner):
        # of two polygons containing each other (identical), keep the first one
        pairs = set(zip(container.tolist(), inner.tolist()))
        mutual = np.array([(j, i) in pairs for i, j in zip(container.tolist(), inner.tolist())])
        keep_pair = ~mutual | (inner > container)
        inner = inner[keep_pair]
    out[inner] = True
    return out


# --------------------------------------------------------------------------- constructions
def _rows(osm_id: Any, name: Any, pts: np.ndarray, polys: np.ndarray) -> dict[str, Any]:
    return {"osm_id": list(osm_id), "name": list(name), "geom_pt": list(pts),
            "geom_poly": list(polys)}


def _concat(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"osm_id": [], "name": [], "geom_pt": [], "geom_poly": []}
    for p in parts:
        for k in out:
            out[k].extend(p[k])
    return out


def _ids_names(table: Any) -> tuple[Any, Any]:
    osm = _col(table, "osm_id").to_numpy(dtype=object)
    name = _col(table, "name").astype(object).where(_col(table, "name").notna(), None)
    return osm, name.to_numpy(dtype=object)


def build_clustered(cat: Category, points: Any, polygons: Any, b3: bool) -> dict[str, Any]:
    """Clustered polygons + unclustered points (§9.2)."""
    import shapely

    mask_poly = cat.primary(polygons) if cat.secondary is None else (
        cat.primary(polygons) | cat.secondary(polygons))
    polys = np.asarray(polygons.geometry.values)[mask_poly]
    labels = cluster_labels(polys, cat.tolerance)
    groups = _union_by_label(polys, labels)
    part_a = _rows([None] * len(groups), [None] * len(groups), shapely.centroid(groups), groups)

    pts_all = np.asarray(points.geometry.values)
    inside = _intersects_any(pts_all, groups)
    if cat.secondary is None:
        sel = cat.primary(points) & ~inside
    elif b3:  # A OR (B AND NOT inside): amenity points are kept even inside a polygon
        sel = cat.primary(points) | (cat.secondary(points) & ~inside)
    else:
        sel = (cat.primary(points) | cat.secondary(points)) & ~inside
    osm, name = _ids_names(points)
    part_b = _rows(osm[sel], name[sel], pts_all[sel], [None] * int(sel.sum()))
    return _concat(part_a, part_b)


def build_retail(cat: Category, points: Any, polygons: Any) -> dict[str, Any]:
    """Polygons and 10 m shop-point circles clustered together (bsa retail)."""
    import shapely

    polys = np.asarray(polygons.geometry.values)[cat.primary(polygons)]
    shop_pts = np.asarray(points.geometry.values)[cat.secondary(points)]
    circles = shapely.buffer(shop_pts, RETAIL_POINT_RADIUS)  # 8 segments per quarter circle
    geoms = np.concatenate([polys, circles]) if len(circles) else polys
    labels = cluster_labels(geoms, cat.tolerance)
    groups = _union_by_label(geoms, labels)
    n = len(groups)
    return _rows([None] * n, [None] * n, shapely.centroid(groups), groups)


def build_individual(cat: Category, points: Any, polygons: Any, b14: bool,
                     with_points: bool = True) -> dict[str, Any]:
    """One destination per polygon minus contained ones, then points outside them."""
    import shapely

    m = cat.primary(polygons)
    polys = np.asarray(polygons.geometry.values)[m]
    osm, name = _ids_names(polygons)
    osm, name = osm[m], name[m]
    keep = ~_contained_mask(polys, b14)
    polys, osm, name = polys[keep], osm[keep], name[keep]
    part_a = _rows(osm, name, shapely.centroid(polys), polys)
    if not with_points:
        return part_a
    pts_all = np.asarray(points.geometry.values)
    sel = cat.primary(points) & ~_intersects_any(pts_all, polys)
    p_osm, p_name = _ids_names(points)
    part_b = _rows(p_osm[sel], p_name[sel], pts_all[sel], [None] * int(sel.sum()))
    return _concat(part_a, part_b)


def build_transit(cat: Category, points: Any, polygons: Any, b14: bool) -> dict[str, Any]:
    """Individual transit polygons, then clustered transit points away from them."""
    import shapely

    part_a = build_individual(cat, points, polygons, b14, with_points=False)
    polys = np.asarray(part_a["geom_poly"], dtype=object)
    pts_all = np.asarray(points.geometry.values)
    sel = cat.primary(points) & ~_intersects_any(pts_all, polys, distance=cat.tolerance)
    pts = pts_all[sel]
    labels = cluster_labels(pts, cat.tolerance)
    if len(pts):
        order = np.argsort(labels, kind="stable")
        centres = shapely.centroid(shapely.multipoints(pts[order], indices=labels[order]))
    else:
        centres = np.empty(0, dtype=object)
    n = len(centres)
    return _concat(part_a, _rows([None] * n, [None] * n, centres, [None] * n))


# --------------------------------------------------------------------------- blocks
def block_arrays(geom_pt: np.ndarray, geom_poly: np.ndarray, blocks: Any,
                 use_point: bool = True) -> list[list[str]]:
    """``blockid20`` arrays: retained blocks intersecting the polygon or the point (§9.3)."""
    import shapely

    n = len(geom_pt)
    if n == 0:
        return []
    bgeoms = np.asarray(blocks.geometry.values)
    ids = blocks["geoid20"].astype(str).to_numpy(dtype=object)
    tree = shapely.STRtree(bgeoms)
    pairs = []
    for geoms in ((geom_poly, geom_pt) if use_point else (geom_poly,)):
        g = np.asarray(geoms, dtype=object)
        present = np.flatnonzero(~shapely.is_missing(g))
        if len(present):
            d, b = tree.query(g[present], predicate="intersects")
            pairs.append(np.stack([present[d], b], axis=1))
    if not pairs:
        return [[] for _ in range(n)]
    allp = np.unique(np.concatenate(pairs), axis=0)  # sorted by destination, then block
    splits = np.searchsorted(allp[:, 0], np.arange(1, n))
    return [ids[b].tolist() for b in np.split(allp[:, 1], splits)]


# --------------------------------------------------------------------------- entry point
def _osm_table(osm: Any, name: str) -> Any:
    if osm is None:
        return None
    return osm.get(name) if isinstance(osm, dict) else getattr(osm, name, None)


def _empty_gdf(crs: Any) -> Any:
    import geopandas as gpd

    return gpd.GeoDataFrame({"osm_id": []}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def build_category(cat: Category, points: Any, polygons: Any, blocks: Any, quirks: Any,
                   crs: Any) -> Any:
    """Build one destination table (GeoDataFrame, active geometry ``geom_pt``)."""
    import geopandas as gpd
    import pandas as pd

    b14 = bool(quirks.identical_polygons_both_deleted)
    if cat.kind == "clustered":
        rows = build_clustered(cat, points, polygons, bool(quirks.amenity_points_inside_polygons))
    elif cat.kind == "retail":
        rows = build_retail(cat, points, polygons)
    elif cat.kind == "individual":
        rows = build_individual(cat, points, polygons, b14)
    else:
        rows = build_transit(cat, points, polygons, b14)
    n = len(rows["geom_pt"])
    pts = np.asarray(rows["geom_pt"], dtype=object).reshape(n)
    polys = np.asarray(rows["geom_poly"], dtype=object).reshape(n)
    data: dict[str, Any] = {
        "id": np.arange(1, n + 1, dtype=np.int64),
        "blockid20": block_arrays(pts, polys, blocks, use_point=cat.kind != "retail"),
    }
    if cat.name_column is not None:
        data["osm_id"] = pd.array(
            [None if v is None or pd.isna(v) else int(v) for v in rows["osm_id"]], dtype="Int64")
        data["name"] = pd.Series(rows["name"], dtype=object)
    data["pop_low_stress"] = pd.array([None] * n, dtype="Int64")
    data["pop_high_stress"] = pd.array([None] * n, dtype="Int64")
    data["pop_score"] = np.full(n, np.nan)
    df = pd.DataFrame(data)
    if cat.name_column is not None:
        df = df.rename(columns={"name": cat.name_column})
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(pts, crs=crs), crs=crs)
    gdf = gdf.rename_geometry("geom_pt")
    gdf["geom_poly"] = gpd.GeoSeries(polys, crs=crs)
    return gdf


def build_destinations(s: RunState) -> dict[str, Any]:
    """Every destination table of §9, keyed by category (see :data:`CATEGORIES`).

    Records ``s.counts["destinations"]`` = number of destinations per category.

    Parameters
    ----------
    s
        The run's state; reads ``s.osm`` (points, polygons), ``s.blocks``, ``s.crs``, ``s.params.quirks``.

    Returns
    -------
    dict
        Category name -> GeoDataFrame of its destinations (with their blocks).
    """
    crs = s.crs
    source = getattr(s, "destinations_osm", None) or s.osm  # Params.destinations_osm
    points = _osm_table(source, "points")
    polygons = _osm_table(source, "polygons")
    points = _points(points) if points is not None else _empty_gdf(crs)
    polygons = _polygons(polygons) if polygons is not None else _empty_gdf(crs)
    quirks = s.params.quirks
    cats = categories(quirks)
    out = {name: build_category(cats[name], points, polygons, s.blocks, quirks, crs)
           for name in CATEGORIES}
    s.counts["destinations"] = {name: int(len(t)) for name, t in out.items()}
    return out
