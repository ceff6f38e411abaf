"""Census block <-> road assignment (BNA-METHOD.md §7).

Each block's polygon is buffered by 15 m (round joins, 8 segments per quarter circle). A
segment belongs to the block when it intersects the buffer and either lies entirely inside it
or the length of its part inside it is more than 30 m. The result is the ``road_ids`` list per
block (reference road ids) plus, for the connectivity phase, the same membership as CSR arrays
of segment row indices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pna_engine.state import RunState

BLOCK_ROAD_BUFFER = 15.0
BLOCK_ROAD_MIN_LENGTH = 30.0
BUFFER_QUAD_SEGS = 8


def _length_in_boxes(lines: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Length of each line inside its axis-aligned box ``(xmin, ymin, xmax, ymax)``
    (Liang-Barsky clipping of every line piece, vectorised)."""
    import shapely

    coords, gi = shapely.get_coordinates(lines, return_index=True)
    same = gi[1:] == gi[:-1]
    a, b, g = coords[:-1][same], coords[1:][same], gi[:-1][same]
    bx = boxes[g]
    d = b - a
    p = np.stack([-d[:, 0], d[:, 0], -d[:, 1], d[:, 1]], axis=1)
    q = np.stack([a[:, 0] - bx[:, 0], bx[:, 2] - a[:, 0], a[:, 1] - bx[:, 1], bx[:, 3] - a[:, 1]],
                 axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = q / p
    t0 = np.where(p < 0, r, 0.0).max(axis=1)
    t1 = np.where(p > 0, r, 1.0).min(axis=1)
    outside = ((p == 0) & (q < 0)).any(axis=1)
    frac = np.where(outside, 0.0, np.clip(t1 - t0, 0.0, None))
    return np.bincount(g, weights=frac * np.hypot(d[:, 0], d[:, 1]), minlength=len(lines))


def block_road_pairs(
    block_geoms: np.ndarray, way_geoms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(block index, segment index) pairs of §7, sorted by block then segment.

    Parameters
    ----------
    block_geoms, way_geoms : array of shapely geometries
        Block polygons and segment lines in the same projected CRS (metres).

    Returns
    -------
    (block_idx, seg_idx) : int64 arrays
    """
    import shapely

    if len(block_geoms) == 0 or len(way_geoms) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    buf = shapely.buffer(block_geoms, BLOCK_ROAD_BUFFER, quad_segs=BUFFER_QUAD_SEGS)
    tree = shapely.STRtree(way_geoms)
    bi, wi = tree.query(buf, predicate="intersects")
    bi = bi.astype(np.int64)
    wi = wi.astype(np.int64)
    keep = shapely.contains(buf[bi], way_geoms[wi])
    rest = np.flatnonzero(~keep)
    if len(rest):
        # The length inside the buffer is at most the length inside its bounding box (+1 m):
        # an exact, cheap bound that settles most pairs (e.g. cross streets touching a corner)
        # before the costly GEOS overlay.
        box = shapely.bounds(buf[bi[rest]]) + np.array([-1.0, -1.0, 1.0, 1.0])
        maybe = rest[_length_in_boxes(way_geoms[wi[rest]], box) > BLOCK_ROAD_MIN_LENGTH - 1e-6]
        inter = shapely.intersection(buf[bi[maybe]], way_geoms[wi[maybe]])
        keep[maybe] = shapely.length(inter) > BLOCK_ROAD_MIN_LENGTH
    bi, wi = bi[keep], wi[keep]
    order = np.lexsort((wi, bi))
    return bi[order], wi[order]


def assign_roads(s: RunState) -> Any:
    """Pipeline phase ``blocks``: add ``road_ids`` (list of road ids) to ``s.blocks`` (§7).

    Parameters
    ----------
    s : RunState
        Uses ``s.blocks`` and ``s.ways`` (same projected CRS).

    Returns
    -------
    GeoDataFrame
        ``s.blocks`` with a ``road_ids`` column.
    """
    blocks = s.blocks.copy()
    way_geoms = np.asarray(s.ways.geometry.values)
    bi, wi = block_road_pairs(np.asarray(blocks.geometry.values), way_geoms)
    nb = len(blocks)
    ptr = np.zeros(nb + 1, dtype=np.int64)
    np.add.at(ptr, bi + 1, 1)
    ptr = np.cumsum(ptr)
    road_id = s.ways["road_id"].to_numpy(dtype=np.int64)
    rid = road_id[wi]
    blocks["road_ids"] = [rid[ptr[k] : ptr[k + 1]].tolist() for k in range(nb)]
    s.counts["block_road_pairs"] = int(len(bi))
    return blocks
