"""Way and intersection attributes (BNA-METHOD §2.4.4, §3), vectorised.

:func:`compute_features` turns the imported segments into the ``neighborhood_ways`` table (all
§12.3 columns; stress columns are filled by :mod:`pna_engine.stress`), the
``neighborhood_ways_intersections`` table and the ``neighborhood_paths`` clusters. The rules run
in the reference order: buffer clip and ``path``+``bicycle=no`` removal, one_way, width_ft,
functional class (+ pruning), paths, speed_limit, lanes, parking, bike infrastructure, class
adjustment, then legs, signalized, stops, rrfb, island.

"The OSM tags of a segment" are the line-table row with the segment's ``osm_id``; a rule
``first_match`` is "first matching rule wins" (§0), NULL (None / <NA>) when nothing matches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pna_engine.arrays import Tags
from pna_engine.arrays import eq as _eq
from pna_engine.arrays import int_array as _int_array
from pna_engine.arrays import isin as _isin
from pna_engine.arrays import present as _present

if TYPE_CHECKING:
    from pna_engine.state import RunState

#: Search distance for signals, stops, RRFBs and islands (m, §3.10).
SIGCTL_SEARCH_DIST = 25.0
M_TO_FT = 3.28084
_Y = ("yes", "both", "right", "left")
_BIKE_OK = ("yes", "permissive", "designated")
_CLASS_ROADS = ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
                "secondary", "secondary_link", "tertiary", "tertiary_link", "residential",
                "unclassified", "living_street")


# --------------------------------------------------------------------------- helpers
def _str_series(a: np.ndarray) -> Any:
    import pandas as pd

    return pd.Series(a, dtype=object)


def first_number(a: np.ndarray, pattern: str = r"(\d+\.?\d?\d?)") -> np.ndarray:
    """First match of ``pattern`` as float (NaN when absent): the SQL ``substring(x FROM re)``."""
    import pandas as pd

    s = _str_series(a)
    mask = _present(a)
    out = np.full(len(a), np.nan)
    if mask.any():
        ext = s[mask].astype(str).str.extract(pattern, expand=False)
        out[mask] = pd.to_numeric(ext, errors="coerce").to_numpy(dtype=float)
    return out


def _endswith(a: np.ndarray, suffix: str) -> np.ndarray:
    out = np.zeros(len(a), dtype=bool)
    idx = np.flatnonzero(_present(a))  # most tags are absent on most segments
    if len(idx):
        out[idx] = [isinstance(v, str) and v.endswith(suffix) for v in a[idx]]
    return out


def first_match(n: int, rules: Sequence[tuple[np.ndarray, Any]], default: Any = None,
                dtype: Any = object) -> np.ndarray:
    """Evaluate "first matching rule wins": rules are ``(condition, value)`` (value scalar or
    array); rows no rule matches get ``default``."""
    out = np.full(n, default, dtype=dtype)
    done = np.zeros(n, dtype=bool)
    for cond, value in rules:
        m = np.asarray(cond, dtype=bool) & ~done
        if m.any():
            out[m] = value[m] if isinstance(value, np.ndarray) else value
        done |= m
    return out


def round_half_even(x: np.ndarray) -> np.ndarray:
    """PostgreSQL float -> integer assignment (ties to even), NaN kept."""
    return np.rint(x)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """PostgreSQL numeric ROUND (ties away from zero), NaN kept."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def uuid4_strings(n: int) -> list[str]:
    """``n`` random version-4 UUIDs as text (what ``uuid.uuid4()`` gives, in bulk)."""
    b = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    h = b.tobytes().hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]


# --------------------------------------------------------------------------- §2.4.4 clip
def buffer_clip(s: RunState) -> tuple[Any, Any]:
    """Drop segments and OSM rows farther than the boundary buffer; drop ``path``+``bicycle=no``
    line rows (§2.4.4). Returns (segments, lines); updates ``s.osm.points/polygons``."""
    import shapely

    osm = s.osm
    bnd = s.boundary.geometry.union_all()
    shapely.prepare(bnd)
    buf = float(s.params.boundary_buffer)

    def near(gdf: Any) -> Any:
        if len(gdf) == 0:
            return gdf
        geoms = gdf.geometry.values
        keep = shapely.intersects(bnd, geoms)  # prepared: fast; most rows touch the boundary
        rest = np.flatnonzero(~keep)
        if len(rest):
            keep[rest] = shapely.dwithin(geoms[rest], bnd, buf)
        return gdf if keep.all() else gdf.loc[keep].reset_index(drop=True)

    segments = near(osm.segments)
    lines = near(osm.lines)
    osm.points = near(osm.points)
    osm.polygons = near(osm.polygons)
    dest = getattr(s, "destinations_osm", None)
    if dest is not None:
        dest.points = near(dest.points)
        dest.polygons = near(dest.polygons)
    lt = Tags(lines)
    drop = lt.eq("highway", "path") & lt.eq("bicycle", "no")
    if drop.any():
        lines = lines.loc[~drop].reset_index(drop=True)
    return segments, lines


# --------------------------------------------------------------------------- way rules
def one_way_car(t: Tags) -> np.ndarray:
    """§3.1: ``ft`` for oneway yes/1, ``tf`` for -1 (trimmed), else None.

    The reference trims with SQL ``trim()``, which removes spaces only: a tab, newline or
    no-break space around the value leaves it unmatched (two-way).
    """
    ow = np.array([v.strip(" ") if isinstance(v, str) else None for v in t("oneway")],
                  dtype=object)
    return first_match(t.n, [(_isin(ow, ("yes", "1")), "ft"), (_eq(ow, "-1"), "tf")])


def width_ft(t: Tags) -> np.ndarray:
    """§3.2 (bsa): roadway width in feet, float before integer rounding (NaN = NULL)."""
    w = t("width")
    n = first_number(w)
    out = np.full(t.n, np.nan)
    ft = _endswith(w, " ft")
    out[ft] = n[ft]
    feet_inch = np.fromiter((isinstance(v, str) and ((("'" in v) and v.endswith('"')
                                                      and v.index("'") < len(v) - 1)
                                                     or v.endswith("'")) for v in w),
                            dtype=bool, count=t.n)
    if feet_inch.any():
        x = first_number(w, r"(\d+)'")
        y = first_number(w, r'(\d+)"')
        out[feet_inch] = (x + np.where(np.isnan(y), 0.0, y / 12.0))[feet_inch]
    m = _endswith(w, " m")
    out[m] = M_TO_FT * n[m]
    unitless = np.isnan(out) & _present(w) & (n < 20)
    out[unitless] = M_TO_FT * n[unitless]
    return out


def functional_class(t: Tags, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """§3.3 rules 1-8 (bsa, access rule A everywhere). Returns (class, xwalk)."""
    hw = t("highway")
    access = t("access")
    bike_ok = t.isin("bicycle", _BIKE_OK)
    rule_a = ~_present(access) | ~_isin(access, ("no", "private")) | (_eq(access, "no") & bike_ok)
    fc = np.full(t.n, None, dtype=object)
    xwalk = np.full(t.n, np.nan)
    m = _isin(hw, _CLASS_ROADS) & rule_a
    fc[m] = hw[m]
    fc[_eq(hw, "track") & t.eq("tracktype", "grade1") & rule_a] = "track"
    fc[_isin(hw, ("cycleway", "path")) & rule_a] = "path"
    m = _eq(hw, "footway") & t.isin("footway", ("crossing", "traffic_island")) & rule_a
    fc[m] = "path"
    xwalk[m] = 1
    # width_ft is an INTEGER column by then (rounded, ties to even)
    w0 = np.where(np.isnan(width), 0.0, round_half_even(width))
    fc[_eq(hw, "footway") & bike_ok & rule_a & (t.eq("bicycle", "designated") | (w0 >= 8))] = "path"
    fc[_eq(hw, "service") & bike_ok & rule_a] = "unclassified"
    golf = t.isin("golf", ("path", "cartpath")) | t.isin("golf_cart", ("yes", "designated"))
    fc[_eq(hw, "path") & golf & rule_a] = "unclassified"
    fc[_eq(hw, "pedestrian") & bike_ok & rule_a] = "living_street"
    return fc, xwalk


def prune(ways: Any, single_pass: bool) -> Any:
    """Delete unclassified segments, then orphans (§3.3; B22: a single pass)."""
    ways = ways.loc[_present(ways["functional_class"].to_numpy(dtype=object))]
    while True:
        f = ways["intersection_from"].to_numpy(dtype=np.int64, na_value=-1)
        to = ways["intersection_to"].to_numpy(dtype=np.int64, na_value=-1)
        ends = np.concatenate([f, to])
        ids, cnt = np.unique(ends, return_counts=True)
        lookup = dict(zip(ids.tolist(), cnt.tolist()))
        # uses of each end by OTHER segments (a loop segment uses its vertex twice itself)
        cf = np.array([lookup[v] for v in f.tolist()], dtype=np.int64) - 1 - (f == to)
        ct = np.array([lookup[v] for v in to.tolist()], dtype=np.int64) - 1 - (f == to)
        orphan = (cf <= 0) & (ct <= 0)
        if not orphan.any():
            break
        ways = ways.loc[~orphan]
        if single_pass:
            break
    return ways.reset_index(drop=True)


def speed_limit(t: Tags) -> np.ndarray:
    """§3.5: integer mph (NaN = NULL)."""
    ms = t("maxspeed")
    k = first_number(ms, r"(\d+)")
    bare = np.fromiter((isinstance(v, str) and _is_bare_number(v) for v in ms), dtype=bool,
                       count=t.n)
    kmh = bare | _endswith(ms, " kmph")
    out = np.full(t.n, np.nan)
    out[kmh] = round_half_away(k[kmh] / 1.609 / 5) * 5
    mph = _endswith(ms, " mph")
    out[mph] = k[mph]
    return out


def _is_bare_number(v: str) -> bool:
    import re

    return re.fullmatch(r"\d+(\.\d+)?", v) is not None


def _count(a: np.ndarray, noright: bool = False) -> np.ndarray:
    out = np.full(len(a), np.nan)
    for i, v in enumerate(a):
        if isinstance(v, str):
            parts = v.split("|")
            if noright:
                parts = [p for p in parts if p != "right"]
            out[i] = len(parts) if parts else np.nan
    return out


def lanes(t: Tags) -> dict[str, np.ndarray]:
    """§3.6: ft/tf lanes and cross lanes (raw ``oneway``), twltl flag."""
    ow = t("oneway")
    ow_fwd = _isin(ow, ("1", "yes"))
    ow_bwd = _eq(ow, "-1")
    two = ~_present(ow) | _eq(ow, "no")
    lanes_n = first_number(t("lanes"), r"(\d+)")
    has_lanes = t.present("lanes")
    out: dict[str, np.ndarray] = {}
    for d, key, ow_d in (("ft", "forward", ow_fwd), ("tf", "backward", ow_bwd)):
        tl_d, tl = t(f"turn:lanes:{key}"), t("turn:lanes")
        ln_d = first_number(t(f"lanes:{key}"), r"(\d+)")
        tail = [
            (t.present(f"lanes:{key}"), ln_d),
            (has_lanes & ow_d, lanes_n),
            (has_lanes & two, np.ceil(lanes_n / 2)),
        ]
        out[f"{d}_lanes"] = first_match(t.n, [
            (_present(tl_d), _count(tl_d)), (_present(tl) & ow_d, _count(tl))] + tail,
            default=np.nan, dtype=float)
        out[f"{d}_cross_lanes"] = first_match(t.n, [
            (_present(tl_d), _count(tl_d, True)), (_present(tl) & ow_d, _count(tl, True))] + tail,
            default=np.nan, dtype=float)
    out["twltl_cross_lanes"] = np.where(
        t.present("lanes:both_ways") | t.present("turn:lanes:both_ways"), 1.0, np.nan)
    return out


def parking(t: Tags, both_ignored: bool) -> tuple[np.ndarray, np.ndarray]:
    """§3.7: ft_park (right side), tf_park (left side); 1/0/NaN."""

    def side(s: str) -> np.ndarray:
        return first_match(t.n, [
            (t.isin(f"parking:lane:{s}", ("parallel", "paralell", "diagonal", "perpendicular")), 1.0),
            (t.isin(f"parking:lane:{s}", ("no_parking", "no_stopping")), 0.0),
            (t.eq(f"parking:{s}", "lane"), 1.0),
            (t.eq(f"parking:{s}", "no"), 0.0),
            (t.isin(f"parking:{s}:restriction", ("no_stopping", "no_parking")), 0.0),
        ], default=np.nan, dtype=float)

    ft, tf = side("right"), side("left")
    if not both_ignored:  # corrected: a side without its own tag falls back to the :both tags
        both = side("both")
        ft = np.where(np.isnan(ft), both, ft)
        tf = np.where(np.isnan(tf), both, tf)
    return ft, tf


def bike_infra(t: Tags, owc: np.ndarray, q: Any) -> tuple[np.ndarray, np.ndarray]:
    """§3.8.1-3.8.2: ft/tf bike infrastructure (sharrow, buffered_lane, lane, track, None)."""
    C, CB, CL, CR = t("cycleway"), t("cycleway:both"), t("cycleway:left"), t("cycleway:right")
    BUF = _isin(t("cycleway:buffer"), _Y)
    CBB = _isin(t("cycleway:both:buffer"), _Y)
    CLB = _isin(t("cycleway:left:buffer"), _Y)
    CRB = _isin(t("cycleway:right:buffer"), _Y)
    CLB_yes = t.eq("cycleway:left:buffer", "yes")
    CRB_yes = t.eq("cycleway:right:buffer", "yes")
    CLO, CRO = t("cycleway:left:oneway"), t("cycleway:right:oneway")
    OB = t("oneway:bicycle")
    clo_ok = ~_eq(CLO, "-1")
    cro_ok = ~_eq(CRO, "-1")
    # B5: the reference's contraflow rules T4-T9 test ``:oneway=-1`` (a facility running with
    # the cars); corrected, they test a facility running in the digitised direction.
    contra = ("-1",) if q.contraflow_oneway_minus_one else ("yes", "1")
    clo_m1, cro_m1 = _isin(CLO, contra), _isin(CRO, contra)
    e = _eq
    head = [
        (e(CB, "shared_lane"), "sharrow"),
        (e(CB, "buffered_lane"), "buffered_lane"),
        (e(CB, "lane") & BUF, "buffered_lane"),
        (e(CB, "lane") & CBB, "buffered_lane"),
        (e(CB, "lane"), "lane"),
        (e(CB, "track"), "track"),
        (e(CR, "track") & (e(OB, "no") | e(CRO, "no")), "track"),
        (e(CL, "track") & (e(OB, "no") | e(CLO, "no")), "track"),
        (e(C, "track") & e(OB, "no"), "track"),
    ]
    is_ft, is_tf = e(owc, "ft"), e(owc, "tf")
    is_two = ~is_ft & ~is_tf

    def with_traffic(near: np.ndarray, near_ok: np.ndarray, near_b: np.ndarray,
                     far: np.ndarray, far_ok: np.ndarray, far_b: np.ndarray,
                     buffered_far_needs_ok: bool, c_lane_buf_needs_far_ok: bool):
        # "near" = the side whose rules come first (ft: left, tf: right) - per the spec tables
        return [
            (e(near, "shared_lane"), "sharrow"),
            (e(near, "lane") & near_ok & BUF, "buffered_lane"),
            (e(near, "lane") & near_ok & near_b, "buffered_lane"),
            (e(near, "lane") & near_ok, "lane"),
            (e(near, "track") & near_ok, "track"),
            (e(C, "shared_lane"), "sharrow"),
            (e(far, "shared_lane"), "sharrow"),
            (e(C, "buffered_lane"), "buffered_lane"),
            (e(far, "buffered_lane") & (far_ok if buffered_far_needs_ok else True), "buffered_lane"),
            (e(C, "lane") & BUF & (far_ok if c_lane_buf_needs_far_ok else True), "buffered_lane"),
            (e(far, "lane") & far_ok & BUF, "buffered_lane"),
            (e(far, "lane") & far_ok & far_b, "buffered_lane"),
            (e(C, "lane"), "lane"),
            (e(far, "lane") & far_ok, "lane"),
            (e(C, "track"), "track"),
            (e(far, "track") & far_ok, "track"),
        ]

    def contraflow(opp_track_ok: np.ndarray):
        return [
            (e(C, "opposite_lane") & BUF, "buffered_lane"),
            (e(CR, "opposite_lane") & BUF, "buffered_lane"),
            (e(CR, "opposite_lane") & CRB, "buffered_lane"),
            (clo_m1 & e(CL, "track"), "track"),
            (cro_m1 & e(CR, "track"), "track"),
            (clo_m1 & e(CL, "lane") & CLB_yes, "buffered_lane"),
            (cro_m1 & e(CR, "lane") & CRB_yes, "buffered_lane"),
            (clo_m1 & e(CL, "lane"), "lane"),
            (cro_m1 & e(CR, "lane"), "lane"),
            (e(C, "opposite_lane"), "lane"),
            (e(CR, "opposite_lane"), "lane"),
            (e(C, "opposite_track"), "track"),
            (e(CL, "opposite_track") & opp_track_ok, "track"),
            (e(CR, "opposite_track") & opp_track_ok, "track"),
        ]

    def two_way(side: np.ndarray, side_b: np.ndarray):
        return [
            (e(C, "shared_lane"), "sharrow"),
            (e(side, "shared_lane"), "sharrow"),
            (e(C, "buffered_lane"), "buffered_lane"),
            (e(side, "buffered_lane"), "buffered_lane"),
            (e(C, "lane") & BUF, "buffered_lane"),
            (e(side, "lane") & BUF, "buffered_lane"),
            (e(side, "lane") & side_b, "buffered_lane"),
            (e(C, "lane"), "lane"),
            (e(side, "lane"), "lane"),
            (e(C, "track"), "track"),
            (e(side, "track"), "track"),
        ]

    def branch(rules, mask):
        return [(c & mask, v) for c, v in rules]

    # ft: with traffic on one_way_car=ft (left side first - as written in the reference)
    ft_rules = head + branch(with_traffic(CL, clo_ok, CLB, CR, cro_ok, CRB, True, False), is_ft) \
        + branch(contraflow(np.ones(t.n, bool)), is_tf) + branch(two_way(CR, CRB), is_two)
    # tf: with traffic on one_way_car=tf; contraflow on ft where T13/T14 require
    # one_way_car=tf inside the ft branch (B4: never true)
    opp_ok = np.zeros(t.n, bool) if q.opposite_track_tf_ignored else np.ones(t.n, bool)
    tf_rules = head + branch(with_traffic(CR, cro_ok, CRB, CL, clo_ok, CLB, False, True), is_tf) \
        + branch(contraflow(opp_ok), is_ft) + branch(two_way(CL, CLB), is_two)
    return first_match(t.n, ft_rules), first_match(t.n, tf_rules)


def bike_one_way(owc: np.ndarray, ft_infra: np.ndarray, tf_infra: np.ndarray,
                 t: Tags) -> np.ndarray:
    """§3.8.3: the bicycle one-way flag."""
    ob_no = t.eq("oneway:bicycle", "no")
    out = owc.copy()
    out[_eq(owc, "ft") & (_present(tf_infra) | ob_no)] = None
    out[_eq(owc, "tf") & (_present(ft_infra) | ob_no)] = None
    return out


def infra_width(t: Tags, owc: np.ndarray, infra: np.ndarray, direction: str) -> np.ndarray:
    """§3.8.4: facility width in feet (float, NaN = NULL) where the infra is not NULL."""
    if direction == "ft":
        own, other, other_dir = "cycleway:right:width", "cycleway:left:width", "ft"
    else:
        own, other, other_dir = "cycleway:left:width", "cycleway:right:width", "tf"
    is_dir = _eq(owc, other_dir)
    cands = [(t(own), True), (t(other), is_dir), (t("cycleway:both:width"), True),
             (t("cycleway:width"), True)]
    nums = [first_number(a) for a, _ in cands]
    rules: list[tuple[np.ndarray, Any]] = []
    for suffix, factor in ((" ft", 1.0), (" m", M_TO_FT)):
        for (a, ok), n in zip(cands, nums):
            rules.append((_endswith(a, suffix) & ok, factor * n))
    for (a, ok), n in zip(cands, nums):
        rules.append((_present(a) & ok, M_TO_FT * n))
    out = first_match(t.n, rules, default=np.nan, dtype=float)
    out[~_present(infra)] = np.nan
    return out


def class_adjustment(fc: np.ndarray, ft_infra: np.ndarray, tf_infra: np.ndarray,
                     ft_lanes: np.ndarray, tf_lanes: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """§3.9 (bsa): residential/unclassified -> tertiary."""
    real = ("track", "buffered_lane", "lane")
    both = _isin(ft_infra, real) & _isin(tf_infra, real)
    adj = _isin(fc, ("residential", "unclassified")) & (
        both | (np.nan_to_num(ft_lanes, nan=0) > 1) | (np.nan_to_num(tf_lanes, nan=0) > 1)
        | (np.nan_to_num(speed, nan=0) >= 30))
    out = fc.copy()
    out[adj] = "tertiary"
    return out


# --------------------------------------------------------------------------- paths
def path_clusters(ways: Any) -> tuple[np.ndarray, Any]:
    """§3.4: clusters of intersecting path segments. Returns (path_id per way, paths table)."""
    import geopandas as gpd
    import pandas as pd
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    is_path = _eq(ways["functional_class"].to_numpy(dtype=object), "path")
    idx = np.flatnonzero(is_path)
    path_id = np.full(len(ways), np.nan)
    cols = {"path_id": pd.array([], dtype="Int64"), "path_length": pd.array([], dtype="Int64"),
            "bbox_length": pd.array([], dtype="Int64"), "road_ids": []}
    if len(idx) == 0:
        return path_id, gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=ways.crs),
                                         crs=ways.crs)
    geoms = ways.geometry.values[idx]
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    n = len(idx)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # number clusters by their lowest road_id (a stable order)
    road = ways["road_id"].to_numpy(dtype=np.int64)[idx]
    first_road = pd.Series(road).groupby(labels).min()
    order = first_road.sort_values(kind="stable").index.to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    pid = rank[labels]
    path_id[idx] = pid
    lengths = shapely.length(geoms)
    frame = pd.DataFrame({"pid": pid, "len": lengths, "road": road})
    g = frame.groupby("pid", sort=True)
    ids = g["len"].sum().index.to_numpy()
    multi = [shapely.multilinestrings(list(geoms[pid == i])) for i in ids]
    bounds = shapely.bounds(np.array(multi, dtype=object))
    diag = np.hypot(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    paths = gpd.GeoDataFrame({
        "path_id": pd.array(ids, dtype="Int64"),
        "path_length": pd.array(round_half_even(g["len"].sum().to_numpy()).astype(np.int64),
                                dtype="Int64"),
        "bbox_length": pd.array(round_half_even(diag).astype(np.int64), dtype="Int64"),
        "road_ids": [sorted(v.tolist()) for v in g["road"].agg(lambda r: r.to_numpy())],
    }, geometry=gpd.GeoSeries(multi, crs=ways.crs), crs=ways.crs)
    return path_id, paths


# --------------------------------------------------------------------------- intersections
def _incidence(ways: Any) -> tuple[np.ndarray, np.ndarray]:
    """(way row, int_id) pairs: each segment once per distinct end vertex."""
    f = ways["intersection_from"].to_numpy(dtype=np.int64, na_value=-1)
    to = ways["intersection_to"].to_numpy(dtype=np.int64, na_value=-1)
    rows = np.arange(len(ways))
    not_loop = f != to
    return (np.concatenate([rows, rows[not_loop]]), np.concatenate([f, to[not_loop]]))


def _within(points: np.ndarray, targets: np.ndarray, d: float) -> np.ndarray:
    """For each of ``targets``: is any of ``points`` within ``d``?"""
    import shapely

    out = np.zeros(len(targets), dtype=bool)
    if len(points) == 0 or len(targets) == 0:
        return out
    tree = shapely.STRtree(points)
    hits = tree.query(targets, predicate="dwithin", distance=d)
    out[np.unique(hits[0])] = True
    return out


def intersection_features(ways: Any, ints: Any, lines_by_way: Any, points: Any) -> Any:
    """§3.10: legs, signalized, stops, rrfb, island."""
    import pandas as pd

    rows, iid = _incidence(ways)
    legs = pd.Series(iid).value_counts()
    int_id = ints["int_id"].to_numpy(dtype=np.int64)
    n_legs = legs.reindex(int_id).fillna(0).to_numpy(dtype=np.int64)
    many = n_legs > 2
    geoms = ints.geometry.values
    pt = Tags(points)
    p_geom = points.geometry.values
    p_id = points["osm_id"].to_numpy(dtype=np.int64)
    node = ints["osm_id"].to_numpy(dtype=np.int64)
    crossing = pt.eq("highway", "crossing")
    d = SIGCTL_SEARCH_DIST

    sig = np.isin(node, p_id[pt.eq("highway", "traffic_signals")])
    wt = Tags(lines_by_way)
    direction = wt("traffic_signals:direction")
    f = ways["intersection_from"].to_numpy(dtype=np.int64, na_value=-1)
    to = ways["intersection_to"].to_numpy(dtype=np.int64, na_value=-1)
    sig |= np.isin(int_id, np.concatenate([to[_eq(direction, "forward")],
                                           f[_eq(direction, "backward")]]))
    sig |= many & _within(p_geom[crossing & pt.eq("crossing", "traffic_signals")], geoms, d)
    sig |= many & _within(p_geom[crossing & pt.isin("crossing", ("hawk", "pelican", "toucan"))],
                          geoms, d)
    sig = sig | (many & _within(geoms[sig], geoms, d))

    stops = np.isin(node, p_id[pt.eq("highway", "stop") & pt.eq("stop", "all")])
    stops = stops | (many & _within(geoms[stops], geoms, d))
    rrfb = many & _within(p_geom[crossing & pt.isin("flashing_lights",
                                                    ("yes", "button", "always", "sensor"))],
                          geoms, d)
    island = many & _within(p_geom[crossing & (pt.eq("crossing", "island")
                                               | pt.eq("crossing:island", "yes"))], geoms, d)
    out = ints[["int_id", "osm_id", "geometry"]].copy()
    out.insert(2, "legs", pd.array(n_legs, dtype="Int64"))
    out.insert(3, "signalized", sig)
    out.insert(4, "stops", stops)
    out.insert(5, "rrfb", rrfb)
    out.insert(6, "island", island)
    return out


# --------------------------------------------------------------------------- entry point
WAYS_COLUMNS = [
    "road_id", "osm_id", "tag_id", "name", "intersection_from", "intersection_to", "oneway",
    "tdg_id", "functional_class", "path_id", "speed_limit", "one_way_car", "one_way", "width_ft",
    "ft_bike_infra", "ft_bike_infra_width", "tf_bike_infra", "tf_bike_infra_width", "ft_lanes",
    "tf_lanes", "ft_cross_lanes", "tf_cross_lanes", "twltl_cross_lanes", "ft_park", "tf_park",
    "ft_seg_stress", "ft_int_stress", "tf_seg_stress", "tf_int_stress", "xwalk",
]


def compute_features(s: RunState) -> tuple[Any, Any, Any]:
    """Pipeline phase ``features`` (§2.4.4, §3).

    Parameters
    ----------
    s : RunState
        Uses ``s.osm`` (:class:`~pna_engine.osm.OsmTables`), ``s.boundary`` and ``s.params``.

    Returns
    -------
    (ways, intersections, paths)
        GeoDataFrames ``neighborhood_ways`` (stress columns still NULL),
        ``neighborhood_ways_intersections`` and ``neighborhood_paths``.
    """
    import geopandas as gpd
    import pandas as pd

    q = s.params.quirks
    segments, lines = buffer_clip(s)
    attrs = pd.DataFrame(lines.drop(columns="geometry")).drop_duplicates("osm_id")
    seg = pd.DataFrame(segments.drop(columns="geometry"))
    joined = seg[["osm_id"]].merge(attrs, on="osm_id", how="left")
    t = Tags(joined)
    owc = one_way_car(t)
    width = width_ft(t)
    fc, xwalk = functional_class(t, width)
    ways = gpd.GeoDataFrame(seg.assign(functional_class=fc, one_way_car=owc, width_ft=width,
                                       xwalk=xwalk, _row=np.arange(len(seg))),
                            geometry=segments.geometry.values, crs=segments.crs)
    ways = prune(ways, single_pass=q.single_pass_orphans)
    keep = ways["_row"].to_numpy()
    joined = joined.iloc[keep].reset_index(drop=True)
    t = Tags(joined)
    owc = ways["one_way_car"].to_numpy(dtype=object)
    path_id, paths = path_clusters(ways)
    speed = speed_limit(t)
    ln = lanes(t)
    ft_park, tf_park = parking(t, both_ignored=q.parking_both_ignored)
    ft_infra, tf_infra = bike_infra(t, owc, q)
    one_way = bike_one_way(owc, ft_infra, tf_infra, t)
    ft_w = infra_width(t, owc, ft_infra, "ft")
    tf_w = infra_width(t, owc, tf_infra, "tf")
    fc = class_adjustment(ways["functional_class"].to_numpy(dtype=object), ft_infra, tf_infra,
                          ln["ft_lanes"], ln["tf_lanes"], speed)
    n = len(ways)
    na_int = pd.array([pd.NA] * n, dtype="Int64")
    out = pd.DataFrame({
        "road_id": ways["road_id"].array,
        "osm_id": ways["osm_id"].array,
        "tag_id": ways["tag_id"].array,
        "name": ways["name"].to_numpy(dtype=object),
        "intersection_from": ways["intersection_from"].array,
        "intersection_to": ways["intersection_to"].array,
        "oneway": ways["oneway"].to_numpy(dtype=object),
        "tdg_id": uuid4_strings(n),
        "functional_class": fc,
        "path_id": _int_array(path_id),
        "speed_limit": _int_array(speed),
        "one_way_car": owc,
        "one_way": one_way,
        "width_ft": _int_array(round_half_even(ways["width_ft"].to_numpy(dtype=float))),
        "ft_bike_infra": ft_infra,
        "ft_bike_infra_width": ft_w,
        "tf_bike_infra": tf_infra,
        "tf_bike_infra_width": tf_w,
        "ft_lanes": _int_array(ln["ft_lanes"]),
        "tf_lanes": _int_array(ln["tf_lanes"]),
        "ft_cross_lanes": _int_array(ln["ft_cross_lanes"]),
        "tf_cross_lanes": _int_array(ln["tf_cross_lanes"]),
        "twltl_cross_lanes": _int_array(ln["twltl_cross_lanes"]),
        "ft_park": _int_array(ft_park),
        "tf_park": _int_array(tf_park),
        "ft_seg_stress": na_int.copy(),
        "ft_int_stress": na_int.copy(),
        "tf_seg_stress": na_int.copy(),
        "tf_int_stress": na_int.copy(),
        "xwalk": _int_array(ways["xwalk"].to_numpy(dtype=float)),
    })
    ways_out = gpd.GeoDataFrame(out, geometry=ways.geometry.values, crs=ways.crs)
    # intersections still used by a segment (§3.3 step 3)
    ints = s.osm.intersections
    used = np.union1d(out["intersection_from"].to_numpy(dtype=np.int64, na_value=-1),
                      out["intersection_to"].to_numpy(dtype=np.int64, na_value=-1))
    ints = ints.loc[np.isin(ints["int_id"].to_numpy(dtype=np.int64), used)].reset_index(drop=True)
    intersections = intersection_features(ways_out, ints, joined, s.osm.points)
    s.counts["ways"] = int(n)
    s.counts["intersections"] = int(len(intersections))
    s.counts["paths"] = int(len(paths))
    return ways_out, intersections, paths
