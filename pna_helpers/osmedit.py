"""Write an edited copy of an OSM extract (pyosmium): change way tags, remove ways, add ways
and tagged nodes.

The result is a real ``.osm.pbf`` (or ``.osm``) file that goes through the engine's whole
import path - e.g. "next year" of a place for :mod:`pna_helpers.explain`, or a planned
network. (What-if scenarios on tags alone do not need a file: see :mod:`pna_helpers.scenario`.)

>>> edit_osm("city.osm.pbf", "city-2027.osm.pbf",
...          set_tags={4243035: {"cycleway": "track", "maxspeed": None}},
...          remove_ways=[37142650],
...          add_nodes=[{"lon": 24.94, "lat": 60.17, "tags": {"amenity": "school"}}],
...          add_ways=[{"coords": [(24.940, 60.170), (24.942, 60.171)],
...                     "tags": {"highway": "cycleway"}}])          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pna_engine.atomic import atomic_path
from pna_engine.errors import InputError

#: First id given to new nodes and ways (far above today's OSM ids).
NEW_ID_BASE = 90_000_000_000


@dataclass
class EditSummary:
    """What :func:`edit_osm` did."""

    path: Path
    tags_changed: list[int] = field(default_factory=list)
    ways_removed: list[int] = field(default_factory=list)
    ways_added: list[int] = field(default_factory=list)
    nodes_added: list[int] = field(default_factory=list)


def edit_osm(src: str | Path, dst: str | Path, *,
             set_tags: dict[int, dict[str, str | None]] | None = None,
             remove_ways: Iterable[int] = (),
             add_nodes: Iterable[dict[str, Any]] = (),
             add_ways: Iterable[dict[str, Any]] = ()) -> EditSummary:
    """Copy ``src`` to ``dst`` with edits (written atomically).

    Parameters
    ----------
    src, dst : path
        OSM files (``.osm.pbf``, ``.osm``, ...; the format follows the suffix).
    set_tags : dict
        Way id -> ``{tag: value}``; ``None`` deletes the tag.
    remove_ways : iterable of int
        Way ids to drop (relations keep their now dangling member references, as in OSM
        extracts).
    add_nodes : iterable of dict
        ``{"lon", "lat", "tags"}``: new tagged nodes (e.g. a school).
    add_ways : iterable of dict
        ``{"coords": [(lon, lat), ...] or "nodes": [existing node ids], "tags": {...}}``; new
        nodes are created for ``coords`` (a coordinate equal to an existing way node's reuses
        that node, so the new way joins the network there).

    Returns
    -------
    EditSummary
    """
    import osmium

    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise InputError(f"OSM file not found: {src}")
    set_tags = {int(k): v for k, v in (set_tags or {}).items()}
    remove = {int(w) for w in remove_ways}
    add_nodes, add_ways = list(add_nodes), list(add_ways)
    summary = EditSummary(path=dst)

    # existing way-node locations, to join new ways to the network at shared coordinates
    want = {(round(float(x), 7), round(float(y), 7)) for w in add_ways for x, y in
            w.get("coords", [])}
    at: dict[tuple[float, float], int] = {}
    if want:
        for o in osmium.FileProcessor(str(src), osmium.osm.NODE):
            key = (round(o.location.lon, 7), round(o.location.lat, 7))
            if key in want:
                at.setdefault(key, o.id)

    next_id = NEW_ID_BASE
    new_nodes: list[Any] = []
    new_ways: list[Any] = []
    for n in add_nodes:
        next_id += 1
        new_nodes.append(osmium.osm.mutable.Node(id=next_id, location=(n["lon"], n["lat"]),
                                                 tags=dict(n.get("tags") or {}), version=1))
        summary.nodes_added.append(next_id)
    for w in add_ways:
        refs = [int(r) for r in w.get("nodes", [])]
        for x, y in w.get("coords", []):
            key = (round(float(x), 7), round(float(y), 7))
            if key not in at:
                next_id += 1
                new_nodes.append(osmium.osm.mutable.Node(id=next_id, location=(x, y), tags={},
                                                         version=1))
                at[key] = next_id
            refs.append(at[key])
        if len(refs) < 2:
            raise InputError("a new way needs at least 2 nodes (coords or nodes)")
        next_id += 1
        new_ways.append(osmium.osm.mutable.Way(id=next_id, nodes=refs,
                                               tags=dict(w.get("tags") or {}), version=1))
        summary.ways_added.append(next_id)

    with atomic_path(dst) as tmp:
        writer = osmium.SimpleWriter(str(tmp))
        try:
            nodes_flushed = False
            for o in osmium.FileProcessor(str(src)):
                if o.is_node():
                    writer.add_node(o)
                    continue
                if not nodes_flushed:  # new nodes before the first way (readers need them)
                    for n in new_nodes:
                        writer.add_node(n)
                    nodes_flushed = True
                if o.is_way():
                    if o.id in remove:
                        summary.ways_removed.append(o.id)
                        continue
                    if o.id in set_tags:
                        tags = {t.k: t.v for t in o.tags}
                        for k, v in set_tags[o.id].items():
                            if v is None:
                                tags.pop(k, None)
                            else:
                                tags[k] = str(v)
                        summary.tags_changed.append(o.id)
                        writer.add_way(o.replace(tags=tags))
                    else:
                        writer.add_way(o)
                    continue
                if new_ways:  # new ways before the first relation
                    for w in new_ways:
                        writer.add_way(w)
                    new_ways = []
                writer.add_relation(o)
            if not nodes_flushed:
                for n in new_nodes:
                    writer.add_node(n)
            for w in new_ways:
                writer.add_way(w)
        finally:
            writer.close()
        missing = (set(set_tags) - set(summary.tags_changed)) | (remove - set(summary.ways_removed))
        if missing:  # nothing is written
            raise InputError(f"way ids not in {src.name}: {sorted(missing)[:10]}; check the ids")
    return summary
