"""The state of a run: the tables each phase reads and fills (see :mod:`pna_engine.pipeline`).

Every phase's entry point takes a :class:`RunState`: ``phase(s)`` reads the tables of earlier
phases from ``s`` and returns (or sets) its own. Tables are in the output CRS (UTM of the
boundary) with the reference tool's column names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pna_engine.params import Params


@dataclass
class RunState:
    """The tables of a run. Each phase fills some of them; see the module docstring."""

    params: Params
    staging: Path
    # import
    crs: Any = None  # pyproj.CRS of the output (UTM)
    boundary: Any = None  # GeoDataFrame, one row, output CRS
    blocks: Any = None  # GeoDataFrame of retained census blocks (geoid20, pop20, ...)
    jobs: Any = None  # DataFrame (blockid20, jobs) or None (non-US)
    speeds: Any = None  # residential speed defaults (state/city)
    osm: Any = None  # imported OSM tables (segments, intersections, lines, points, polygons)
    destinations_osm: Any = None  # OSM tables of Params.destinations_osm (None: from ``osm``)
    inputs: dict[str, str] = field(default_factory=dict)  # input role -> local file used
    # features / stress
    ways: Any = None  # GeoDataFrame neighborhood_ways
    intersections: Any = None  # GeoDataFrame neighborhood_ways_intersections
    paths: Any = None  # GeoDataFrame neighborhood_paths
    # network / blocks / connectivity
    network: Any = None
    connectivity: Any = None
    # destinations / scores
    destinations: dict[str, Any] = field(default_factory=dict)
    scores: Any = None
    # bookkeeping
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
