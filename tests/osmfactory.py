"""Write small OSM files (``.osm`` XML or ``.osm.pbf``) from Python dicts, for tests.

Example::

    from osmfactory import write_osm
    path = write_osm(tmp_path / "t.osm.pbf",
                     nodes={1: (24.94, 60.17), 2: (24.95, 60.17, {"highway": "traffic_signals"})},
                     ways={10: ([1, 2], {"highway": "residential", "name": "Oak St"})},
                     relations={100: ([("w", 10, "outer")], {"type": "multipolygon"})})

* ``nodes``: id -> ``(lon, lat)`` or ``(lon, lat, tags)``.
* ``ways``: id -> ``(node_ids, tags)``.
* ``relations``: id -> ``(members, tags)``, members ``(type, ref, role)`` with type ``n``/``w``/``r``.

Objects are written sorted by type then id (as osmium expects). The format follows the file
name (``.osm``, ``.osm.pbf``, ``.osm.gz``, ``.osm.bz2``).

:func:`grid_nodes` helps place nodes on a metric grid around a point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

NodeSpec = tuple[float, float] | tuple[float, float, Mapping[str, str]]
WaySpec = tuple[Sequence[int], Mapping[str, str]]
RelSpec = tuple[Sequence[tuple[str, int, str]], Mapping[str, str]]


def write_osm(
    path: str | Path,
    nodes: Mapping[int, NodeSpec] | None = None,
    ways: Mapping[int, WaySpec] | None = None,
    relations: Mapping[int, RelSpec] | None = None,
) -> Path:
    """Write the given nodes, ways and relations to ``path``; return the path."""
    import osmium

    path = Path(path)
    if path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    w = osmium.SimpleWriter(str(path))
    try:
        for nid in sorted(nodes or {}):
            spec = nodes[nid]
            tags: Mapping[str, str] = spec[2] if len(spec) > 2 else {}  # type: ignore[misc]
            w.add_node(osmium.osm.mutable.Node(id=nid, location=(spec[0], spec[1]), tags=dict(tags),
                                               version=1, visible=True))
        for wid in sorted(ways or {}):
            refs, tags = ways[wid]
            w.add_way(osmium.osm.mutable.Way(id=wid, nodes=list(refs), tags=dict(tags), version=1,
                                             visible=True))
        for rid in sorted(relations or {}):
            members, tags = relations[rid]
            w.add_relation(osmium.osm.mutable.Relation(
                id=rid, members=[(t, ref, role) for t, ref, role in members], tags=dict(tags),
                version=1, visible=True))
    finally:
        w.close()
    return path


def offset(lon0: float, lat0: float, dx_m: float, dy_m: float) -> tuple[float, float]:
    """The (lon, lat) ``dx_m`` metres east and ``dy_m`` metres north of (lon0, lat0)."""
    lat = lat0 + dy_m / 111_320.0
    lon = lon0 + dx_m / (111_320.0 * math.cos(math.radians(lat0)))
    return lon, lat


def grid_nodes(
    lon0: float, lat0: float, spec: Mapping[int, tuple[float, float] | tuple[float, float, Any]]
) -> dict[int, NodeSpec]:
    """Nodes given in metres relative to (lon0, lat0): id -> (dx, dy[, tags])."""
    out: dict[int, NodeSpec] = {}
    for nid, s in spec.items():
        lon, lat = offset(lon0, lat0, s[0], s[1])
        out[nid] = (lon, lat, dict(s[2])) if len(s) > 2 else (lon, lat)
    return out


def box_polygon_geojson(path: str | Path, lon0: float, lat0: float, half_w_m: float,
                        half_h_m: float | None = None) -> Path:
    """Write a GeoJSON boundary: a rectangle of half sizes (metres) around (lon0, lat0)."""
    import json

    half_h_m = half_w_m if half_h_m is None else half_h_m
    x0, y0 = offset(lon0, lat0, -half_w_m, -half_h_m)
    x1, y1 = offset(lon0, lat0, half_w_m, half_h_m)
    gj = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": "test"},
        "geometry": {"type": "Polygon",
                     "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}}]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gj))
    return path


# --------------------------------------------------------------------------- engine runs
LON0, LAT0 = 24.94, 60.17


def run_to_stress(tmp_path: str | Path, nodes: Mapping[int, NodeSpec],
                  ways: Mapping[int, WaySpec], relations: Mapping[int, RelSpec] | None = None,
                  *, blocks: Any = None, boundary_half_m: float = 3000.0, ext: str = ".osm.pbf",
                  **params: Any) -> Any:
    """Write an OSM file, then run the engine's import -> features -> stress on it.

    The boundary is a square of half-side ``boundary_half_m`` around (LON0, LAT0); ``blocks``
    (a GeoDataFrame in EPSG:4326, or None for the polygon clip only) drives the bbox clip.
    Extra keyword arguments go to :class:`~pna_engine.params.Params` (e.g. ``country``).
    Returns the :class:`~pna_engine.state.RunState` (``ways``, ``intersections``, ``osm``).
    """
    from pna_engine import boundary, features, osm, speeds, stress
    from pna_engine.params import Params
    from pna_engine.state import RunState

    tmp_path = Path(tmp_path)
    bpath = box_polygon_geojson(tmp_path / "boundary.geojson", LON0, LAT0, boundary_half_m)
    opath = write_osm(tmp_path / f"map{ext}", nodes, ways, relations)
    params.setdefault("country", "finland")
    p = Params(boundary=str(bpath), osm=str(opath), output=str(tmp_path / "out"), **params)
    s = RunState(params=p, staging=tmp_path / "staging")
    s.boundary, s.crs = boundary.load_boundary(bpath, p)
    s.blocks = None if blocks is None else blocks.to_crs(s.crs)
    s.speeds = speeds.residential_speeds(p)
    s.osm = osm.import_osm(opath, s)
    s.ways, s.intersections, s.paths = features.compute_features(s)
    s.ways = stress.compute_stress(s)
    return s
