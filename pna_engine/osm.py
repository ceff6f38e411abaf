"""OSM import: the reference's double clip, osm2pgrouting segmentation and osm2pgsql tables.

BNA-METHOD §2.3-§2.4. One pass over the file with pyosmium (node locations resolved on the
ways, untagged nodes never reach Python), then everything is numpy:

1. **Polygon clip** (``osmium extract``, complete ways): nodes inside the boundary polygon,
   every way with at least one node inside (with all its nodes), relations referencing a kept
   node or way.
2. **Bounding-box clip** (``osmconvert -b --drop-broken-refs``) to the WGS 84 extent of the
   retained census blocks: nodes outside are dropped and removed from the ways (ways are
   truncated), ways without a node left disappear. Skipped when there are no blocks.
3. **Segmentation** (osm2pgrouting): ``uses(node)`` = occurrences of the node in the node lists
   of *all* ways left; a routable way (``highway`` value of the mapconfig) is cut at every
   interior node used more than once.
4. **Attribute tables** (osm2pgsql classic output with ``pfb.style``): ``lines`` (non-area ways
   with a style tag), ``points`` (nodes with a style tag), ``polygons`` (closed area ways and
   multipolygon relations, one row per polygon part, relation ids negated).

``params.way_tag_edits`` (what-if scenarios) are applied to way tags as they are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pna_engine.errors import InputError

if TYPE_CHECKING:
    from pna_engine.state import RunState

#: osm2pgrouting ``mapconfig_highway.xml``: routable ``highway`` values and their tag ids.
HIGHWAY_TAG_IDS: dict[str, int] = {
    "road": 100, "motorway": 101, "motorway_link": 102, "motorway_junction": 103, "trunk": 104,
    "trunk_link": 105, "primary": 106, "primary_link": 107, "secondary": 108,
    "secondary_link": 124, "tertiary": 109, "tertiary_link": 125, "residential": 110,
    "living_street": 111, "service": 112, "track": 113, "pedestrian": 114, "services": 115,
    "bus_guideway": 116, "path": 117, "cycleway": 118, "footway": 119, "bridleway": 120,
    "byway": 121, "steps": 122, "unclassified": 123,
}

_BOTH = ["access", "bicycle", "bridge", "building", "button_operated", "crossing",
         "crossing:island", "crossing_ref", "flashing_lights", "foot", "healthcare", "highway",
         "junction", "leisure", "motorcar", "name", "oneway", "oneway:bicycle", "operator",
         "public_transport", "railway", "station", "segregated", "shop", "stop", "surface",
         "traffic_sign", "tunnel", "width"]
#: ``pfb.style`` columns of nodes (point table).
NODE_KEYS: frozenset[str] = frozenset(_BOTH + ["amenity", "traffic_signals"])
_WAY_ONLY = ["amenity", "cycleway", "cycleway:left", "cycleway:right", "cycleway:both",
             "cycleway:buffer", "cycleway:left:buffer", "cycleway:right:buffer",
             "cycleway:both:buffer", "cycleway:width", "cycleway:left:width",
             "cycleway:right:width", "cycleway:both:width", "cycleway:left:oneway",
             "cycleway:right:oneway", "footway", "golf", "golf_cart", "landuse", "lanes",
             "lanes:forward", "lanes:backward", "lanes:both_ways", "maxspeed", "parking",
             "parking:lane", "parking:lane:right", "parking:lane:left", "parking:lane:both",
             "parking:lane:width", "parking:lane:right:width", "parking:lane:left:width",
             "parking:lane:both:width", "parking:right", "parking:left", "parking:both",
             "parking:right:restriction", "parking:left:restriction",
             "parking:both:restriction", "parking:right:width", "parking:left:width",
             "parking:both:width", "service", "tracktype", "traffic_signals:direction",
             "turn:lanes", "turn:lanes:both_ways", "turn:lanes:backward", "turn:lanes:forward",
             "width:lanes", "width:lanes:forward", "width:lanes:backward"]
#: ``pfb.style`` columns of ways and relations (line and polygon tables).
WAY_KEYS: frozenset[str] = frozenset(_BOTH + _WAY_ONLY)
#: Every column of the attribute tables (same set in all three, absent values are None).
STYLE_COLUMNS: list[str] = sorted(set(_BOTH) | set(_WAY_ONLY) | {"traffic_signals"})
#: Keys flagged ``polygon`` in the style: a closed way carrying one is an area.
POLYGON_KEYS: frozenset[str] = frozenset({
    "amenity", "building", "healthcare", "landuse", "leisure", "operator", "public_transport",
    "railway", "shop", "station"})
_AREA_YES = frozenset({"yes", "1", "true"})
_AREA_NO = frozenset({"no", "0", "false"})
_AREA_RELATION_TYPES = frozenset({"multipolygon", "boundary"})


@dataclass
class OsmTables:
    """The imported OSM data, all geometries in the output CRS.

    Attributes
    ----------
    segments : GeoDataFrame
        Routable segments: road_id, osm_id, name, intersection_from, intersection_to, tag_id,
        oneway, geometry (LineString).
    intersections : GeoDataFrame
        Segment end vertices: int_id, osm_id (node id), geometry (Point).
    lines : GeoDataFrame
        osm2pgsql line table: osm_id + :data:`STYLE_COLUMNS` + geometry (the way attributes).
    points : GeoDataFrame
        osm2pgsql point table: osm_id + :data:`STYLE_COLUMNS` + geometry.
    polygons : GeoDataFrame
        osm2pgsql polygon table: osm_id (relations negative) + :data:`STYLE_COLUMNS` + geometry.
    """

    segments: Any
    intersections: Any
    lines: Any
    points: Any
    polygons: Any


@dataclass
class _Raw:
    """What the file holds, as flat arrays (way node lists concatenated)."""

    way_ids: np.ndarray  # (W,)
    way_tags: list[dict[str, str]]  # (W,)
    wix: np.ndarray  # (N,) way index of each node reference
    refs: np.ndarray  # (N,) node ids
    lon: np.ndarray  # (N,)
    lat: np.ndarray  # (N,)
    node_ids: np.ndarray  # (P,) tagged nodes
    node_lon: np.ndarray
    node_lat: np.ndarray
    node_tags: list[dict[str, str]]
    rel_ids: list[int]
    rel_tags: list[dict[str, str]]
    rel_members: list[list[tuple[str, int, str]]]
    #: relations whose first tag is a routable ``highway`` value, in file order: (tag id,
    #: member way ids); osm2pgrouting gives their member ways that tag (§2.4.1)
    highway_rels: list[tuple[int, list[int]]] = field(default_factory=list)


# --------------------------------------------------------------------------- reading
def _tags_public(o: Any) -> dict[str, str]:
    return dict(o.tags) if len(o.tags) else {}


def _tags_direct(o: Any) -> dict[str, str]:
    """Tags of an OSM object straight from pyosmium's C++ object (about 3x faster than
    iterating ``o.tags``, whose iterator is Python code). Checked against the public API on
    the first tagged object of each file; any difference switches back to ``_tags_public``."""
    d = o._pyosmium_data
    n = d.tags_size()
    if not n:
        return {}
    it, nxt = d.tags_begin(), d.tags_next
    return dict(nxt(it) for _ in range(n))


def _checked_reader(public: Any, direct: Any) -> Any:
    """A reader that uses ``direct`` (pyosmium internals, faster) once it gave the same
    non-empty result as ``public`` on a first object, else ``public`` for good."""
    state: dict[str, Any] = {"fn": None}

    def read(o: Any) -> Any:
        fn = state["fn"]
        if fn is not None:
            return fn(o)
        value = public(o)
        if value:
            try:
                state["fn"] = direct if direct(o) == value else public
            except Exception:  # noqa: BLE001 - pyosmium internals changed
                state["fn"] = public
        return value

    return read


def _refs_public(nodes: Any) -> list[int]:
    return [n.ref for n in nodes]


def _refs_direct(nodes: Any) -> list[int]:
    """Node ids of a way's node list straight from pyosmium's C++ list (skips two Python
    frames per node); used through :func:`_checked_reader`."""
    lst, data = nodes._list, nodes._pyosmium_data
    get = lst.get
    return [get(data, i).ref for i in range(lst.size(data))]


def _wkb_points(hexes: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Coordinates (N, 2) and point counts of hex WKB linestrings as pyosmium's
    ``WKBFactory`` writes them (little-endian, 2D), all records decoded at once; None if a
    record is anything else."""
    lengths = np.fromiter(map(len, hexes), dtype=np.int64, count=len(hexes)) // 2
    try:
        buf = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8)
    except (TypeError, ValueError):
        return None
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if (lengths < 9).any():
        return None
    header = starts[:, None] + np.arange(9)
    h = buf[header]
    kind = np.ascontiguousarray(h[:, 1:5]).view("<u4").ravel()
    npts = np.ascontiguousarray(h[:, 5:9]).view("<u4").ravel().astype(np.int64)
    if not ((h[:, 0] == 1).all() and (kind == 2).all() and (lengths == 9 + 16 * npts).all()):
        return None
    keep = np.ones(len(buf), dtype=bool)
    keep[header.ravel()] = False
    return buf[keep].view("<f8").reshape(-1, 2), npts


def _way_coordinates(lines_wkb: list[Any], n_refs: np.ndarray, starts: np.ndarray,
                     lon: np.ndarray, lat: np.ndarray) -> None:
    """Fill ``lon``/``lat`` (one slot per node reference) from the ways' WKB linestrings
    (None: the way is filled by the caller)."""
    has = np.fromiter((w is not None for w in lines_wkb), dtype=bool, count=len(lines_wkb))
    hexes = [w for w in lines_wkb if w is not None]
    decoded = _wkb_points(hexes) if hexes and all(isinstance(w, str) for w in hexes) else None
    if decoded is not None and np.array_equal(decoded[1], n_refs[has]):
        pts = decoded[0]
        pos = np.flatnonzero(np.repeat(has, n_refs))
        lon[pos], lat[pos] = pts[:, 0], pts[:, 1]
        return
    import shapely  # any other WKB: GEOS decodes it

    geoms = shapely.from_wkb(np.array(lines_wkb, dtype=object))
    coords, gi = shapely.get_coordinates(geoms, return_index=True)
    if len(gi):
        within = np.arange(len(gi)) - np.searchsorted(gi, gi)
        pos = starts[gi] + within
        lon[pos], lat[pos] = coords[:, 0], coords[:, 1]


def _check_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"OSM file not found: {p}; check the --osm path")
    name = p.name.lower()
    if not name.endswith((".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".bz2", ".gz")):
        raise InputError(f"unsupported OSM file {p}: give a .osm.pbf, .osm, .osm.bz2 or .osm.gz file")
    return p


def read_osm(path: str | Path, way_tag_edits: dict[int, dict[str, str | None]] | None = None) -> _Raw:
    """Read every way, tagged node and area relation of an OSM file (WGS 84 coordinates)."""
    import osmium

    p = _check_path(path)
    edits = {int(k): v for k, v in (way_tag_edits or {}).items()}  # ids may come from JSON
    way_ids: list[int] = []
    way_tags: list[dict[str, str]] = []
    counts: list[int] = []
    refs: list[int] = []
    node_ids: list[int] = []
    node_x: list[float] = []
    node_y: list[float] = []
    node_tags: list[dict[str, str]] = []
    rel_ids: list[int] = []
    rel_tags: list[dict[str, str]] = []
    rel_members: list[list[tuple[str, int, str]]] = []
    highway_rels: list[tuple[int, list[int]]] = []
    # Coordinates come as one WKB linestring per way (built in C++, decoded in bulk); a way
    # with a missing node location or a single node falls back to a per-node loop.
    wkb = osmium.geom.WKBFactory()
    make_line, all_nodes = wkb.create_linestring, osmium.geom.use_nodes.ALL
    lines_wkb: list[bytes | str | None] = []
    fallback: dict[int, list[tuple[float, float]]] = {}
    refs_extend = refs.extend
    tags_of = _checked_reader(_tags_public, _tags_direct)
    refs_of = _checked_reader(_refs_public, _refs_direct)
    try:
        fp = (osmium.FileProcessor(str(p))
              .with_locations()
              .with_filter(osmium.filter.EmptyTagFilter().enable_for(osmium.osm.NODE)))
        for o in fp:
            if o.is_way():
                wid = o.id
                way_ids.append(wid)
                tags = tags_of(o)
                if wid in edits:
                    for k, v in edits[wid].items():
                        if v is None:
                            tags.pop(k, None)
                        else:
                            tags[k] = str(v)
                way_tags.append(tags)
                nodes = o.nodes
                r = refs_of(nodes)
                refs_extend(r)
                counts.append(len(r))
                try:
                    lines_wkb.append(make_line(nodes, all_nodes))
                except Exception:  # noqa: BLE001 - invalid location or < 2 nodes
                    lines_wkb.append(None)
                    fallback[len(lines_wkb) - 1] = [
                        (n.lon, n.lat) if n.location.valid() else (np.nan, np.nan)
                        for n in nodes]
            elif o.is_node():
                loc = o.location
                if not loc.valid():
                    continue
                node_ids.append(o.id)
                node_x.append(loc.lon)
                node_y.append(loc.lat)
                node_tags.append(tags_of(o))
            elif o.is_relation():
                if o.tags.get("type") in _AREA_RELATION_TYPES:
                    rel_ids.append(o.id)
                    rel_tags.append(tags_of(o))
                    rel_members.append([(m.type, m.ref, m.role) for m in o.members])
                first = next(iter(o.tags), None)
                if first is not None and first.k == "highway" and first.v in HIGHWAY_TAG_IDS:
                    highway_rels.append((HIGHWAY_TAG_IDS[first.v],
                                         [m.ref for m in o.members if m.type == "w"]))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - libosmium errors: corrupt or unreadable file
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"cannot read the OSM file {p}: {first}; is it a valid OSM extract?") from None
    n_refs = np.asarray(counts, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(n_refs)[:-1]]).astype(np.int64)
    lon = np.full(len(refs), np.nan)
    lat = np.full(len(refs), np.nan)
    if lines_wkb:
        _way_coordinates(lines_wkb, n_refs, starts, lon, lat)
        for wi, pts in fallback.items():
            if pts:
                a = np.asarray(pts, dtype=float)
                lon[starts[wi]:starts[wi] + len(a)] = a[:, 0]
                lat[starts[wi]:starts[wi] + len(a)] = a[:, 1]
    invalid = np.isnan(lon) | np.isnan(lat)
    wix = np.repeat(np.arange(len(way_ids)), np.asarray(counts, dtype=np.int64))
    raw = _Raw(
        way_ids=np.asarray(way_ids, dtype=np.int64), way_tags=way_tags, wix=wix,
        refs=np.asarray(refs, dtype=np.int64), lon=lon, lat=lat,
        node_ids=np.asarray(node_ids, dtype=np.int64),
        node_lon=np.asarray(node_x, dtype=float), node_lat=np.asarray(node_y, dtype=float),
        node_tags=node_tags, rel_ids=rel_ids, rel_tags=rel_tags, rel_members=rel_members,
        highway_rels=highway_rels,
    )
    # node references missing from the file are skipped (osm2pgrouting, osm2pgsql)
    return _keep_refs(raw, ~invalid)


def _keep_refs(raw: _Raw, keep: np.ndarray) -> _Raw:
    """Drop way node references where ``keep`` is False; ways left without nodes vanish."""
    if keep.all():
        n_per_way = np.bincount(raw.wix, minlength=len(raw.way_ids))
        if (n_per_way > 0).all():
            return raw
    wix = raw.wix[keep]
    n_per_way = np.bincount(wix, minlength=len(raw.way_ids))
    alive = n_per_way > 0
    new_index = np.cumsum(alive) - 1
    raw.way_ids = raw.way_ids[alive]
    raw.way_tags = [t for t, a in zip(raw.way_tags, alive.tolist()) if a]
    raw.wix = new_index[wix]
    raw.refs = raw.refs[keep]
    raw.lon = raw.lon[keep]
    raw.lat = raw.lat[keep]
    return raw


def _isin(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``np.isin(values, ids)`` for OSM ids by binary search in the sorted ids: numpy 2.4's
    ``isin`` dedups ``ids`` with a hash table that is 5-10x slower than sorting them."""
    ids = np.sort(np.asarray(ids).ravel())
    values = np.asarray(values)
    if len(ids) == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
    return ids[pos] == values


def _keep_nodes(raw: _Raw, keep: np.ndarray) -> None:
    raw.node_ids = raw.node_ids[keep]
    raw.node_lon = raw.node_lon[keep]
    raw.node_lat = raw.node_lat[keep]
    raw.node_tags = [t for t, k in zip(raw.node_tags, keep.tolist()) if k]


def _keep_relations(raw: _Raw, *, drop_broken_refs: bool) -> None:
    """Keep relations with a member among the kept nodes/ways (optionally dropping the others)."""
    if not raw.rel_ids:
        return
    wset = set(raw.way_ids.tolist())
    node_members = np.array([m[1] for ms in raw.rel_members for m in ms if m[0] == "n"],
                            dtype=np.int64)
    nset: set[int] = set()
    if len(node_members):
        present = _isin(node_members, raw.refs) | _isin(node_members, raw.node_ids)
        nset = set(node_members[present].tolist())
    ids, tags, members = [], [], []
    for rid, t, ms in zip(raw.rel_ids, raw.rel_tags, raw.rel_members):
        present = [(m[0] == "n" and m[1] in nset) or (m[0] == "w" and m[1] in wset) for m in ms]
        if not any(present):
            continue
        ids.append(rid)
        tags.append(t)
        members.append([m for m, ok in zip(ms, present) if ok] if drop_broken_refs else ms)
    raw.rel_ids, raw.rel_tags, raw.rel_members = ids, tags, members


# --------------------------------------------------------------------------- clipping
def clip_polygon(raw: _Raw, polygon: Any) -> _Raw:
    """``osmium extract`` with the default *complete ways* strategy (§2.3 step 2)."""
    import shapely

    shapely.prepare(polygon)
    inside = shapely.intersects_xy(polygon, raw.lon, raw.lat)
    way_in = np.bincount(raw.wix, weights=inside, minlength=len(raw.way_ids)) > 0
    raw = _keep_refs(raw, way_in[raw.wix])
    node_in = shapely.intersects_xy(polygon, raw.node_lon, raw.node_lat) | _isin(
        raw.node_ids, raw.refs)
    _keep_nodes(raw, node_in)
    _keep_relations(raw, drop_broken_refs=False)
    return raw


def _fixed(a: np.ndarray) -> np.ndarray:
    """Degrees -> OSM fixed-point integers (1e-7 degree units), as stored in the file."""
    return np.rint(np.asarray(a, dtype=float) * 1e7)


def clip_bbox(raw: _Raw, bbox: tuple[float, float, float, float]) -> _Raw:
    """``osmconvert -b=<bbox> --drop-broken-refs`` (§2.3 step 3): ways truncated to the box.

    osmconvert converts the box to fixed-point 1e-7 degrees by truncation toward zero and keeps
    nodes on its border (checked on the reference tool's clipped Helsinki file, whose header
    shows the truncated box and which keeps a node lying exactly on it).
    """
    x0, y0, x1, y1 = np.trunc(np.asarray(bbox, dtype=float) * 1e7)
    lon, lat = _fixed(raw.lon), _fixed(raw.lat)
    inbox = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
    raw = _keep_refs(raw, inbox)
    nlon, nlat = _fixed(raw.node_lon), _fixed(raw.node_lat)
    nin = (nlon >= x0) & (nlon <= x1) & (nlat >= y0) & (nlat <= y1)
    _keep_nodes(raw, nin)
    _keep_relations(raw, drop_broken_refs=True)
    return raw


# --------------------------------------------------------------------------- tables
def _oneway_text(tags: dict[str, str]) -> str:
    """osm2pgrouting's ``oneway`` column (``Way::implied_oneWay`` then ``Way::oneWay`` on each
    tag in file order; the first tag that decides wins).

    ``junction=roundabout`` and ``highway=motorway`` imply ``YES``; ``oneway`` ``yes``/``true``
    give ``YES``, ``no``/``false`` give ``NO``, ``reversible`` ``REVERSIBLE``, ``-1``
    ``REVERSED``. osm2pgrouting tests ``1`` in both the true and the false list, so ``oneway=1``
    ends as ``NO``; any other value (``0``, ``reverse``, ``alternating``...) leaves ``UNKNOWN``
    and a later tag may still decide.
    """
    for k, v in tags.items():
        if (k == "junction" and v == "roundabout") or (k == "highway" and v == "motorway"):
            return "YES"
        if k == "oneway":
            if v in ("no", "false", "1"):
                return "NO"
            if v in ("yes", "true"):
                return "YES"
            if v == "reversible":
                return "REVERSIBLE"
            if v == "-1":
                return "REVERSED"
    return "UNKNOWN"


def _tag_frame(tags: list[dict[str, str]], keys: frozenset[str]) -> Any:
    """Style columns (object dtype, None when absent) for a list of tag dicts."""
    import pandas as pd

    col_of = {c: j for j, c in enumerate(STYLE_COLUMNS)}
    data = np.full((len(tags), len(STYLE_COLUMNS)), None, dtype=object)
    for i, t in enumerate(tags):
        for k, v in t.items():
            if k in keys:
                data[i, col_of[k]] = v
    return pd.DataFrame(data, columns=STYLE_COLUMNS, dtype=object)


def _has_style_tag(tags: list[dict[str, str]], keys: frozenset[str]) -> np.ndarray:
    return np.fromiter((not keys.isdisjoint(t) for t in tags), dtype=bool, count=len(tags))


def _line_index(n: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(n)), n)


#: osm2pgrouting's default ``--chunk``: ways are exported by chunks of this many ways (all ways
#: of the file, in id order), and a segment equal to one written by an earlier chunk is dropped.
OSM2PGROUTING_CHUNK = 20000


def _first_chunk_copies(raw: _Raw, s0: np.ndarray, s1: np.ndarray) -> np.ndarray:
    """Mask of the segments (node positions ``s0``..``s1``) osm2pgrouting keeps (§2.4.1 step 5).

    Its export deletes from each chunk the segments whose geometry equals (same coordinates,
    same order) a segment already inserted by an earlier chunk; equal segments within one chunk
    all stay. So a segment is kept unless an identical one belongs to an earlier chunk.
    """
    keep = np.ones(len(s0), dtype=bool)
    if len(raw.way_ids) <= OSM2PGROUTING_CHUNK or len(s0) < 2:
        return keep
    rank = np.empty(len(raw.way_ids), dtype=np.int64)
    rank[np.argsort(raw.way_ids, kind="stable")] = np.arange(len(raw.way_ids))
    chunk = rank[raw.wix[s0]] // OSM2PGROUTING_CHUNK
    # candidates: same end coordinates and node count; then compared coordinate by coordinate
    key = np.rec.fromarrays([raw.lon[s0], raw.lat[s0], raw.lon[s1], raw.lat[s1], s1 - s0])
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    dup = np.flatnonzero(cnt[inv] > 1)
    if len(dup) == 0:
        return keep
    groups: dict[int, list[int]] = {}
    for i in dup[np.argsort(inv[dup], kind="stable")].tolist():
        groups.setdefault(int(inv[i]), []).append(i)
    for members in groups.values():
        coords = {i: np.stack([raw.lon[s0[i]:s1[i] + 1], raw.lat[s0[i]:s1[i] + 1]]).tobytes()
                  for i in members}
        first_chunk: dict[bytes, int] = {}
        for i in members:
            first_chunk[coords[i]] = min(first_chunk.get(coords[i], chunk[i]), int(chunk[i]))
        for i in members:
            keep[i] = chunk[i] == first_chunk[coords[i]]
    return keep


def _segments(raw: _Raw, x: np.ndarray, y: np.ndarray, crs: Any) -> tuple[Any, Any]:
    """osm2pgrouting segmentation of the routable ways (§2.4.1)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    n_ways = len(raw.way_ids)
    tag_id = np.fromiter((HIGHWAY_TAG_IDS.get(t.get("highway"), 0) for t in raw.way_tags),
                         dtype=np.int64, count=n_ways)
    if raw.highway_rels and n_ways:
        # a relation whose first tag is a routable highway value gives that tag to every member
        # way of the file, routable or not (osm2pgrouting's relation pass, last one wins)
        order = np.argsort(raw.way_ids, kind="stable")
        for tid, members in raw.highway_rels:
            m = np.asarray(members, dtype=np.int64)
            pos = np.minimum(np.searchsorted(raw.way_ids[order], m), n_ways - 1)
            tag_id[order[pos[raw.way_ids[order][pos] == m]]] = tid
    routable = tag_id > 0
    counts = np.bincount(raw.wix, minlength=n_ways)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    _, inv, uses = np.unique(raw.refs, return_inverse=True, return_counts=True)
    ref_uses = uses[inv]
    pos = np.arange(len(raw.refs))
    first = pos == starts[raw.wix]
    last = pos == starts[raw.wix] + counts[raw.wix] - 1
    on = routable[raw.wix] & (counts[raw.wix] >= 2)
    bp = np.flatnonzero(on & (first | last | (ref_uses > 1)))
    s0, s1 = bp[:-1], bp[1:]
    ok = (raw.wix[s0] == raw.wix[s1]) & ~last[s0]
    s0, s1 = s0[ok], s1[ok]
    keep = _first_chunk_copies(raw, s0, s1)
    s0, s1 = s0[keep], s1[keep]
    lengths = s1 - s0 + 1
    seg_of = _line_index(lengths)
    offs = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    idx = s0[seg_of] + (np.arange(lengths.sum()) - offs[seg_of])
    geoms = shapely.linestrings(x[idx], y[idx], indices=seg_of) if len(idx) else np.array([])
    wi = raw.wix[s0]
    node_from, node_to = raw.refs[s0], raw.refs[s1]
    ends = np.empty(2 * len(s0), dtype=np.int64)
    ends[0::2], ends[1::2] = node_from, node_to
    ends_pos = np.empty(2 * len(s0), dtype=np.int64)
    ends_pos[0::2], ends_pos[1::2] = s0, s1
    vids, first_idx = np.unique(ends, return_index=True)
    order = np.argsort(first_idx, kind="stable")
    vids, ref_pos = vids[order], ends_pos[first_idx[order]]
    int_id = np.arange(1, len(vids) + 1, dtype=np.int64)
    lookup = pd.Series(int_id, index=vids)
    tags = [raw.way_tags[i] for i in wi.tolist()]
    segments = gpd.GeoDataFrame({
        "road_id": pd.array(np.arange(1, len(s0) + 1), dtype="Int64"),
        "osm_id": pd.array(raw.way_ids[wi], dtype="Int64"),
        "name": pd.array([t.get("name") for t in tags], dtype=object),
        "intersection_from": pd.array(lookup.reindex(node_from).to_numpy(), dtype="Int64"),
        "intersection_to": pd.array(lookup.reindex(node_to).to_numpy(), dtype="Int64"),
        "tag_id": pd.array(tag_id[wi], dtype="Int64"),
        "oneway": pd.array([_oneway_text(t) for t in tags], dtype=object),
    }, geometry=gpd.GeoSeries(geoms, crs=crs) if len(s0) else gpd.GeoSeries([], crs=crs),
        crs=crs)
    vx, vy = x[ref_pos], y[ref_pos]
    intersections = gpd.GeoDataFrame({
        "int_id": pd.array(int_id, dtype="Int64"),
        "osm_id": pd.array(vids, dtype="Int64"),
    }, geometry=gpd.GeoSeries(shapely.points(vx, vy), crs=crs), crs=crs)
    return segments, intersections


def _is_area(tags: dict[str, str]) -> bool:
    area = tags.get("area")
    if area in _AREA_NO:
        return False
    return area in _AREA_YES or not POLYGON_KEYS.isdisjoint(tags)


def _lines_and_way_polygons(raw: _Raw, x: np.ndarray, y: np.ndarray, crs: Any) -> tuple[Any, Any]:
    """osm2pgsql line rows and closed-way polygon rows (§2.4.3)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    n_ways = len(raw.way_ids)
    counts = np.bincount(raw.wix, minlength=n_ways)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n_ways else np.array([], int)
    ends = starts + counts - 1
    # osm2pgsql: a closed (first node id = last node id) area way takes the polygon branch and
    # never gets a line row, even when it yields no polygon (fewer than 4 nodes, or a ring the
    # area assembler refuses); any other styled way gets a line row when its linestring has 2
    # distinct consecutive locations (repeated locations are dropped, a 1-point line is none)
    closed = (counts >= 1) & (raw.refs[starts] == raw.refs[ends]) if n_ways else np.array([], bool)
    styled = _has_style_tag(raw.way_tags, WAY_KEYS)
    area = np.fromiter((_is_area(t) for t in raw.way_tags), dtype=bool, count=n_ways)
    poly_branch = styled & closed & area
    poly_way = poly_branch & (counts >= 4)
    moves = np.zeros(len(raw.refs), dtype=bool)
    moves[1:] = ((raw.lon[1:] != raw.lon[:-1]) | (raw.lat[1:] != raw.lat[:-1])) \
        & (raw.wix[1:] == raw.wix[:-1])
    has_extent = np.bincount(raw.wix, weights=moves, minlength=n_ways) > 0
    line_way = styled & ~poly_branch & has_extent

    def rows(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sel = mask[raw.wix]
        return np.flatnonzero(mask), sel

    li, lsel = rows(line_way)
    lgeom = shapely.linestrings(x[lsel], y[lsel], indices=np.searchsorted(li, raw.wix[lsel])) \
        if len(li) else np.array([], dtype=object)
    lines = _tag_frame([raw.way_tags[i] for i in li.tolist()], WAY_KEYS)
    lines.insert(0, "osm_id", pd.array(raw.way_ids[li], dtype="Int64"))
    lines = gpd.GeoDataFrame(lines, geometry=gpd.GeoSeries(lgeom, crs=crs), crs=crs)

    pi, psel = rows(poly_way)
    if len(pi):
        rings = shapely.linearrings(x[psel], y[psel], indices=np.searchsorted(pi, raw.wix[psel]))
        pgeom = shapely.polygons(rings)
        valid = shapely.is_valid(pgeom)
        pi, pgeom = pi[valid], pgeom[valid]
    else:
        pgeom = np.array([], dtype=object)
    polys = _tag_frame([raw.way_tags[i] for i in pi.tolist()], WAY_KEYS)
    polys.insert(0, "osm_id", pd.array(raw.way_ids[pi], dtype="Int64"))
    polys = gpd.GeoDataFrame(polys, geometry=gpd.GeoSeries(pgeom, crs=crs), crs=crs)
    return lines, polys


def _relation_polygons(raw: _Raw, x: np.ndarray, y: np.ndarray, crs: Any) -> Any:
    """Multipolygon relations -> one polygon row per part, ``osm_id = -relation id``."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    keep = [i for i, t in enumerate(raw.rel_tags)
            if not WAY_KEYS.isdisjoint(t)]
    if not keep or len(raw.way_ids) == 0:
        empty = _tag_frame([], WAY_KEYS)
        empty.insert(0, "osm_id", pd.array([], dtype="Int64"))
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    counts = np.bincount(raw.wix, minlength=len(raw.way_ids))
    way_pos = {int(w): i for i, w in enumerate(raw.way_ids.tolist())}
    needed = sorted({way_pos[m[1]] for i in keep for m in raw.rel_members[i]
                     if m[0] == "w" and m[1] in way_pos and counts[way_pos[m[1]]] >= 2})
    sel = np.isin(raw.wix, needed)
    lines = shapely.linestrings(x[sel], y[sel], indices=np.searchsorted(needed, raw.wix[sel]))
    line_of = {w: lines[j] for j, w in enumerate(needed)}
    ids: list[int] = []
    tags: list[dict[str, str]] = []
    geoms: list[Any] = []
    for i in keep:
        outer, inner = [], []
        for mtype, ref, role in raw.rel_members[i]:
            if mtype != "w" or ref not in way_pos or way_pos[ref] not in line_of:
                continue
            (inner if role == "inner" else outer).append(line_of[way_pos[ref]])
        if not outer:
            continue
        shell = shapely.union_all(shapely.get_parts(shapely.polygonize(outer)))
        if shell.is_empty:
            continue
        if inner:
            holes = shapely.union_all(shapely.get_parts(shapely.polygonize(inner)))
            shell = shell.difference(holes)
        for part in shapely.get_parts(shell):
            if part.geom_type == "Polygon" and not part.is_empty:
                ids.append(-raw.rel_ids[i])
                tags.append(raw.rel_tags[i])
                geoms.append(part)
    frame = _tag_frame(tags, WAY_KEYS)
    frame.insert(0, "osm_id", pd.array(ids, dtype="Int64"))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def _points(raw: _Raw, nx: np.ndarray, ny: np.ndarray, crs: Any) -> Any:
    import geopandas as gpd
    import pandas as pd
    import shapely

    styled = _has_style_tag(raw.node_tags, NODE_KEYS)
    idx = np.flatnonzero(styled)
    frame = _tag_frame([raw.node_tags[i] for i in idx.tolist()], NODE_KEYS)
    frame.insert(0, "osm_id", pd.array(raw.node_ids[idx], dtype="Int64"))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(shapely.points(nx[idx], ny[idx]),
                                                          crs=crs), crs=crs)


def build_tables(raw: _Raw, crs: Any) -> OsmTables:
    """Segments, intersections and the osm2pgsql tables of a clipped file, in ``crs``."""
    import pandas as pd
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = tr.transform(raw.lon, raw.lat)
    nx, ny = tr.transform(raw.node_lon, raw.node_lat)
    x, y, nx, ny = (np.asarray(a, dtype=float) for a in (x, y, nx, ny))
    segments, intersections = _segments(raw, x, y, crs)
    lines, way_polys = _lines_and_way_polygons(raw, x, y, crs)
    rel_polys = _relation_polygons(raw, x, y, crs)
    polygons = pd.concat([way_polys, rel_polys], ignore_index=True)
    points = _points(raw, nx, ny, crs)
    return OsmTables(segments=segments, intersections=intersections, lines=lines,
                     points=points, polygons=polygons)


# --------------------------------------------------------------------------- large files
#: Files larger than this (bytes) are first cut to the boundary by the ``osmium`` command
#: (osmium-tool) when it is installed: a state or country extract is too big for a Python pass.
LARGE_OSM_BYTES = 48 * 1024 * 1024


def preclip_with_osmium_tool(path: str | Path, polygon_wgs84: Any, workdir: str | Path
                             ) -> Path | None:
    """``osmium extract --polygon --strategy complete_ways`` (exactly the reference's first clip,
    §2.3 step 2) into ``workdir``; None when the ``osmium`` command is not installed.

    Raises
    ------
    InputError
        The command failed (unreadable or corrupt file).
    """
    import json
    import shutil
    import subprocess

    import shapely

    exe = shutil.which("osmium")
    if exe is None:
        return None
    workdir = Path(workdir)
    poly = workdir / "boundary.geojson"
    poly.write_text(json.dumps({"type": "Feature", "properties": {},
                                "geometry": json.loads(shapely.to_geojson(polygon_wgs84))}))
    out = workdir / "polygon-extract.osm.pbf"
    r = subprocess.run([exe, "extract", "--polygon", str(poly), "--strategy", "complete_ways",
                        "--overwrite", "--output", str(out), str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or ["osmium extract failed"])[-1]
        raise InputError(f"cannot read the OSM file {path}: {msg}; is it a valid OSM extract?")
    return out


# --------------------------------------------------------------------------- entry point
def _boundary_wgs84(s: RunState) -> Any:
    g = s.boundary.attrs.get("wgs84") if hasattr(s.boundary, "attrs") else None
    if g is None:
        g = s.boundary.to_crs("EPSG:4326").geometry.union_all()
    return g


def import_osm(path: str | Path, s: Any, role: str = "osm") -> OsmTables:
    """Pipeline step: read, clip twice, segment and tabulate the OSM extract.

    Parameters
    ----------
    path : str or Path
        ``.osm.pbf``, ``.osm``, ``.osm.bz2`` or ``.osm.gz``.
    s : RunState
        Uses ``s.boundary``, ``s.blocks`` (None: polygon clip only), ``s.crs`` and
        ``s.params.way_tag_edits``; records ``s.inputs["osm"]`` and counts in ``s.counts``.
    role : str
        ``"osm"`` (the run's extract) or ``"destinations_osm"`` (a second file read only for
        its destinations: recorded as ``s.inputs["destinations_osm"]``, no way edits, no counts).

    Returns
    -------
    OsmTables

    Raises
    ------
    InputError
        Missing, unreadable or corrupt file; no OSM data inside the boundary.
    """
    import tempfile

    edits = (getattr(s.params, "way_tag_edits", None) or {}) if role == "osm" else {}
    polygon = _boundary_wgs84(s)
    path = _check_path(path)
    s.inputs[role] = str(path)
    with tempfile.TemporaryDirectory(prefix="pna-osm-") as tmp:
        source = path
        if path.stat().st_size > LARGE_OSM_BYTES:
            clipped = preclip_with_osmium_tool(path, polygon, tmp)
            if clipped is not None:
                source = clipped
                s.notes.append(f"OSM: {path.name} cut to the boundary with osmium extract "
                               "(complete ways) before import")
            else:
                s.notes.append(f"OSM: {path.name} is large and the osmium command is not "
                               "installed; reading it whole is slow (install osmium-tool)")
        raw = read_osm(source, edits)
    n_read = len(raw.way_ids)
    raw = clip_polygon(raw, polygon)
    if len(raw.way_ids) == 0 and len(raw.node_ids) == 0:
        raise InputError(
            f"the OSM file {path} has no data inside the boundary ({n_read} ways read); "
            "give an extract that covers the place (--osm)")
    if s.blocks is not None and len(s.blocks):
        bbox = tuple(float(v) for v in s.blocks.to_crs("EPSG:4326").total_bounds)
        raw = clip_bbox(raw, bbox)  # type: ignore[arg-type]
    tables = build_tables(raw, s.crs)
    if role != "osm":
        return tables
    if len(tables.segments) == 0:
        raise InputError(
            f"the OSM file {path} has no roads or paths inside the boundary; "
            "give an extract that covers the place (--osm)")
    s.counts.update({
        "osm_ways_read": n_read,
        "osm_ways_clipped": int(len(raw.way_ids)),
        "segments_imported": int(len(tables.segments)),
        "intersections_imported": int(len(tables.intersections)),
        "osm_lines": int(len(tables.lines)),
        "osm_points": int(len(tables.points)),
        "osm_polygons": int(len(tables.polygons)),
    })
    return tables
