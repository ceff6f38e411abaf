"""Routing network (BNA-METHOD.md §6): one vertex per road segment, turn links between them.

A vertex is the midpoint of a segment; vertex ``i`` is row ``i`` of ``s.ways``. A link is a
directed move from segment A to segment B through an intersection I both touch, allowed by
their one-way flags. Each link gets a turn angle, a crossing flag (every turn is a crossing
except the rightmost one), a stress (max of the source segment, the crossing and the target
segment) and an integer cost (half the sum of the two rounded segment lengths).

Everything is built with numpy arrays: segment ends are grouped by intersection and the
cartesian product per intersection is produced by repeat/indexing. The result keeps compact
CSR graphs for the connectivity phase and can produce the reference's link and vertex tables
(:meth:`Network.link_table`, :meth:`Network.vert_table`) for checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pna_engine.state import RunState

#: Link stress that makes a link part of the low-stress network.
LOW_STRESS = 1


@dataclass
class Network:
    """The routing network of a run.

    Vertex arrays have one entry per segment (row of ``s.ways``); link arrays one per link,
    in a stable order (by intersection, then source segment, then target segment).
    Stress arrays are float with NaN for NULL; azimuths and turn angles likewise.
    """

    road_id: np.ndarray  # int64, per vertex
    vert_x: np.ndarray
    vert_y: np.ndarray
    length: np.ndarray  # int64, rounded segment lengths (ties to even)
    int_id: np.ndarray  # int64, per link
    source: np.ndarray  # int64 vertex index
    target: np.ndarray
    source_ft: np.ndarray  # bool: source_road_dir == 'ft'
    target_ft: np.ndarray
    source_azi: np.ndarray  # float (integer values, NaN when undefined)
    target_azi: np.ndarray
    turn_angle: np.ndarray
    int_crossing: np.ndarray  # bool
    int_stress: np.ndarray  # float
    source_stress: np.ndarray
    target_stress: np.ndarray
    link_cost: np.ndarray  # int64
    link_stress: np.ndarray  # float
    full: Any = None  # scipy.sparse.csr_matrix, all links (min cost per vertex pair)
    low: Any = None  # scipy.sparse.csr_matrix, links with link_stress == 1

    @property
    def n_vert(self) -> int:
        """Number of vertices (= segments)."""
        return len(self.road_id)

    @property
    def n_link(self) -> int:
        """Number of links."""
        return len(self.source)

    def vert_table(self) -> pd.DataFrame:
        """The reference's ``neighborhood_ways_net_vert`` (vert_id from 1, road_id, x, y)."""
        return pd.DataFrame(
            {
                "vert_id": np.arange(1, self.n_vert + 1),
                "road_id": self.road_id,
                "x": self.vert_x,
                "y": self.vert_y,
            }
        )

    def link_table(self) -> pd.DataFrame:
        """The reference's ``neighborhood_ways_net_link`` columns (without geometry)."""

        def nullable(a: np.ndarray) -> pd.array:
            return pd.array(np.where(np.isnan(a), None, a).tolist(), dtype="Int64")

        return pd.DataFrame(
            {
                "link_id": np.arange(1, self.n_link + 1),
                "int_id": self.int_id,
                "turn_angle": nullable(self.turn_angle),
                "int_crossing": self.int_crossing,
                "int_stress": nullable(self.int_stress),
                "source_vert": self.source + 1,
                "source_road_id": self.road_id[self.source],
                "source_road_dir": np.where(self.source_ft, "ft", "tf"),
                "source_road_azi": nullable(self.source_azi),
                "source_road_length": self.length[self.source],
                "source_stress": nullable(self.source_stress),
                "target_vert": self.target + 1,
                "target_road_id": self.road_id[self.target],
                "target_road_dir": np.where(self.target_ft, "ft", "tf"),
                "target_road_azi": nullable(self.target_azi),
                "target_road_length": self.length[self.target],
                "target_stress": nullable(self.target_stress),
                "link_cost": self.link_cost,
                "link_stress": nullable(self.link_stress),
            }
        )


# --------------------------------------------------------------------------- helpers
def _float_col(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as float64 with NaN for NULL (missing column = all NULL)."""
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _int_col(df: pd.DataFrame, name: str) -> np.ndarray:
    """An id column as int64 with -1 for NULL."""
    v = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(v), -1, v).astype(np.int64)


def azimuth_deg(x0, y0, x1, y1) -> np.ndarray:
    """PostGIS ``degrees(ST_Azimuth(p0, p1))`` stored as an integer (ties to even).

    Clockwise from grid north in [0, 360]; NaN when the two points coincide.
    """
    dx = np.asarray(x1, dtype=float) - x0
    dy = np.asarray(y1, dtype=float) - y0
    az = np.arctan2(dx, dy)
    az = np.where(az < 0, az + 2 * np.pi, az)
    deg = np.rint(np.degrees(az))
    return np.where((dx == 0) & (dy == 0), np.nan, deg)


def _crossing_flags(
    src: np.ndarray, int_id: np.ndarray, turn_angle: np.ndarray, uturn_is_rightmost: bool
) -> np.ndarray:
    """``int_crossing`` per link: False for exactly one link per (source segment, intersection).

    The chosen link is the rightmost turn: right-hand turns (sin > 0) first, the one with the
    smallest cosine among them; otherwise straight ahead first then the slightest left.
    With ``uturn_is_rightmost`` (B15) an exact 180° turn counts as a right turn, because
    ``sin(radians(180))`` is a tiny positive number in double precision. A NULL turn angle
    sorts first (PostgreSQL puts NULLs first in a descending sort). Ties keep link order.
    """
    n = len(src)
    if n == 0:
        return np.zeros(0, dtype=bool)
    rad = np.radians(turn_angle)
    sin = np.sin(rad)
    cos = np.cos(rad)
    if uturn_is_rightmost:
        right = sin > 0
    else:
        a = np.mod(turn_angle, 360)
        right = (a > 0) & (a < 180)
    null = np.isnan(turn_angle)
    # primary: null first (0), then right turns (1), then others (2)
    primary = np.where(null, 0, np.where(right, 1, 2))
    secondary = np.where(null, 0.0, np.where(right, cos, -cos))
    order = np.lexsort((np.arange(n), secondary, primary, int_id, src))
    s_sorted = src[order]
    i_sorted = int_id[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (s_sorted[1:] != s_sorted[:-1]) | (i_sorted[1:] != i_sorted[:-1])
    crossing = np.ones(n, dtype=bool)
    crossing[order[first]] = False
    return crossing


def _pair_links(
    arr_seg: np.ndarray, arr_int: np.ndarray, dep_seg: np.ndarray, dep_int: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (arrival, departure) pairs sharing an intersection, A != B.

    Returns (int_id, source segment, target segment), sorted by intersection, source, target.
    """
    a_ord = np.lexsort((arr_seg, arr_int))
    arr_seg, arr_int = arr_seg[a_ord], arr_int[a_ord]
    d_ord = np.lexsort((dep_seg, dep_int))
    dep_seg, dep_int = dep_seg[d_ord], dep_int[d_ord]
    lo = np.searchsorted(dep_int, arr_int, side="left")
    hi = np.searchsorted(dep_int, arr_int, side="right")
    cnt = hi - lo
    total = int(cnt.sum())
    rep = np.repeat(np.arange(len(arr_seg)), cnt)
    offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    dep_idx = np.repeat(lo, cnt) + offs
    s = arr_seg[rep]
    t = dep_seg[dep_idx]
    i = arr_int[rep]
    keep = s != t
    return i[keep], s[keep], t[keep]


def _csr(n: int, src: np.ndarray, tgt: np.ndarray, cost: np.ndarray):
    """CSR adjacency with the minimum cost per (source, target); zero costs kept as arcs."""
    import scipy.sparse as sp

    if len(src) == 0:
        return sp.csr_matrix((n, n), dtype=np.float64)
    order = np.lexsort((cost, tgt, src))
    s, t, c = src[order], tgt[order], cost[order]
    first = np.ones(len(s), dtype=bool)
    first[1:] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    s, t, c = s[first], t[first], c[first]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, s + 1, 1)
    indptr = np.cumsum(indptr)
    m = sp.csr_matrix((c.astype(np.float64), t.astype(np.int32), indptr), shape=(n, n))
    m.has_sorted_indices = True
    return m


# --------------------------------------------------------------------------- build
def build_from_tables(ways: Any, intersections: Any, uturn_is_rightmost: bool = True) -> Network:
    """Build the network from a ways GeoDataFrame and an intersections table (§6).

    Parameters
    ----------
    ways : GeoDataFrame
        ``neighborhood_ways`` in a projected CRS (metres): road_id, intersection_from,
        intersection_to, one_way ('ft', 'tf' or NULL), ft/tf_seg_stress, ft/tf_int_stress.
    intersections : DataFrame
        Must have ``int_id``; only these intersections carry links.
    uturn_is_rightmost : bool
        Quirk B15 (see :class:`pna_engine.params.Quirks`).

    Returns
    -------
    Network
    """
    import shapely

    geoms = np.asarray(ways.geometry.values)
    n = len(geoms)
    road_id = _int_col(ways, "road_id")
    i_from = _int_col(ways, "intersection_from")
    i_to = _int_col(ways, "intersection_to")
    ow = ways["one_way"].astype(object).to_numpy() if "one_way" in ways.columns else [None] * n
    ow = np.array([v if v in ("ft", "tf") else "" for v in ow], dtype=object)
    ft_seg, tf_seg = _float_col(ways, "ft_seg_stress"), _float_col(ways, "tf_seg_stress")
    ft_int, tf_int = _float_col(ways, "ft_int_stress"), _float_col(ways, "tf_int_stress")

    lengths = shapely.length(geoms)
    length_int = np.rint(lengths).astype(np.int64)
    mid = shapely.line_interpolate_point(geoms, 0.5, normalized=True)
    mx, my = shapely.get_x(mid), shapely.get_y(mid)
    start = shapely.get_point(geoms, 0)
    end = shapely.get_point(geoms, -1)
    sx, sy = shapely.get_x(start), shapely.get_y(start)
    ex, ey = shapely.get_x(end), shapely.get_y(end)

    known = np.unique(_int_col(intersections, "int_id")) if intersections is not None else None
    seg = np.arange(n, dtype=np.int64)
    two_way = ow == ""
    # arrivals: (segment, intersection); loops (from == to) give one row
    arr_seg = np.concatenate([seg[two_way | (ow == "ft")], seg[two_way | (ow == "tf")]])
    arr_int = np.concatenate([i_to[two_way | (ow == "ft")], i_from[two_way | (ow == "tf")]])
    dep_seg = np.concatenate([seg[two_way | (ow == "ft")], seg[two_way | (ow == "tf")]])
    dep_int = np.concatenate([i_from[two_way | (ow == "ft")], i_to[two_way | (ow == "tf")]])

    def clean(sg: np.ndarray, it: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = it >= 0
        if known is not None:
            ok &= np.isin(it, known)
        pairs = np.unique(np.stack([it[ok], sg[ok]], axis=1), axis=0)
        return pairs[:, 1], pairs[:, 0]

    arr_seg, arr_int = clean(arr_seg, arr_int)
    dep_seg, dep_int = clean(dep_seg, dep_int)
    int_id, src, tgt = _pair_links(arr_seg, arr_int, dep_seg, dep_int)

    source_ft = int_id == i_to[src]
    target_ft = int_id == i_to[tgt]
    source_azi = np.where(
        source_ft,
        azimuth_deg(mx[src], my[src], ex[src], ey[src]),
        azimuth_deg(mx[src], my[src], sx[src], sy[src]),
    )
    target_azi = np.where(
        target_ft,
        azimuth_deg(ex[tgt], ey[tgt], mx[tgt], my[tgt]),
        azimuth_deg(sx[tgt], sy[tgt], mx[tgt], my[tgt]),
    )
    turn_angle = np.mod(target_azi - source_azi + 360, 360)
    crossing = _crossing_flags(src, int_id, turn_angle, uturn_is_rightmost)

    source_stress = np.where(source_ft, ft_seg[src], tf_seg[src])
    int_stress = np.where(source_ft, ft_int[src], tf_int[src])
    int_stress = np.where(crossing, int_stress, 1.0)
    target_stress = np.where(target_ft, tf_seg[tgt], ft_seg[tgt])
    link_stress = np.fmax(np.fmax(source_stress, int_stress), target_stress)
    link_cost = (length_int[src] + length_int[tgt]) // 2

    net = Network(
        road_id=road_id,
        vert_x=mx,
        vert_y=my,
        length=length_int,
        int_id=int_id,
        source=src,
        target=tgt,
        source_ft=source_ft,
        target_ft=target_ft,
        source_azi=source_azi,
        target_azi=target_azi,
        turn_angle=turn_angle,
        int_crossing=crossing,
        int_stress=int_stress,
        source_stress=source_stress,
        target_stress=target_stress,
        link_cost=link_cost,
        link_stress=link_stress,
    )
    low = link_stress == LOW_STRESS
    net.full = _csr(n, src, tgt, link_cost)
    net.low = _csr(n, src[low], tgt[low], link_cost[low])
    return net


def build_network(s: RunState) -> Network:
    """Pipeline phase ``network``: build the routing network from ``s.ways`` (§6).

    Parameters
    ----------
    s : RunState
        Uses ``s.ways``, ``s.intersections`` and ``s.params.quirks.uturn_is_rightmost``.

    Returns
    -------
    Network
    """
    net = build_from_tables(
        s.ways, s.intersections, uturn_is_rightmost=s.params.quirks.uturn_is_rightmost
    )
    s.counts["network_vertices"] = net.n_vert
    s.counts["network_links"] = net.n_link
    s.counts["network_low_stress_links"] = int((net.link_stress == LOW_STRESS).sum())
    return net
