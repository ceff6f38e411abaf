"""Segment and intersection (crossing) stress, BNA-METHOD §4 (bsa) and §5.

Stress 1 = low, 3 = high (bsa never produces 2). The class of a segment is its
``functional_class`` after the class adjustment of §3.9. Both directions are computed for
every class, then the one-way reset (§4.7) blanks the direction bikes may not ride.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pna_engine.arrays import Tags
from pna_engine.arrays import eq as _eq
from pna_engine.arrays import int_array as _int_array
from pna_engine.arrays import isin as _isin
from pna_engine.arrays import present as _present

if TYPE_CHECKING:
    from pna_engine.state import RunState

#: §4.2 defaults per class: (speed mph, lanes per direction).
HIGHER_ORDER_DEFAULTS: dict[str, tuple[int, int]] = {
    "primary": (40, 2), "primary_link": (40, 2),
    "secondary": (40, 2), "secondary_link": (40, 2),
    "tertiary": (30, 1), "tertiary_link": (30, 1),
}
#: §4.2 default facility width (ft).
DEFAULT_FACILITY_WIDTH = 5.0
#: §4.5 unclassified default speed (mph).
UNCLASSIFIED_DEFAULT_SPEED = 25
#: §5 crossing defaults for the cross-road W: (speed, lanes per direction).
CROSS_DEFAULTS: dict[str, tuple[int, int]] = {
    "primary": (40, 2), "secondary": (40, 2), "tertiary": (30, 1)}
_MOTOR = ("motorway", "motorway_link", "trunk", "trunk_link")


def _f(a: Any) -> np.ndarray:
    """Nullable integer/float column -> float array with NaN for NULL."""
    import pandas as pd

    return pd.array(a, dtype="Float64").to_numpy(dtype=float, na_value=np.nan)


def higher_order_stress(infra: np.ndarray, speed: np.ndarray, lanes: np.ndarray,
                        width: np.ndarray) -> np.ndarray:
    """§4.2 table for one direction (inputs already defaulted)."""
    track = _eq(infra, "track")
    buf = _eq(infra, "buffered_lane")
    lane = _eq(infra, "lane")
    low = (track
           | (buf & (speed <= 25) & (lanes <= 1))
           | (lane & (speed <= 20) & (lanes <= 1) & (width >= 4))
           | (~track & ~buf & ~lane & (speed <= 15) & (lanes == 1)))
    return np.where(low, 1, 3)


def segment_stress(ways: Any, bicycle: np.ndarray, residential_default: int | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """§4.1-§4.6 for both directions (before the one-way reset)."""
    n = len(ways)
    fc = ways["functional_class"].to_numpy(dtype=object)
    speed = _f(ways["speed_limit"])
    ft = np.full(n, np.nan)
    tf = np.full(n, np.nan)
    m = _isin(fc, _MOTOR)
    ft[m] = tf[m] = 3
    for cls, (sd, ld) in HIGHER_ORDER_DEFAULTS.items():
        m = _eq(fc, cls)
        if not m.any():
            continue
        s = np.where(np.isnan(speed), sd, speed)[m]
        for d, out in (("ft", ft), ("tf", tf)):
            lanes = _f(ways[f"{d}_lanes"])[m]
            width = _f(ways[f"{d}_bike_infra_width"])[m]
            out[m] = higher_order_stress(
                ways[f"{d}_bike_infra"].to_numpy(dtype=object)[m], s,
                np.where(np.isnan(lanes), ld, lanes),
                np.where(np.isnan(width), DEFAULT_FACILITY_WIDTH, width))
    m = _eq(fc, "residential")
    default = np.nan if residential_default is None else float(residential_default)
    s = np.where(np.isnan(speed), default, speed)
    res = np.where(~np.isnan(s) & (s <= 25), 1, 3)  # NULL speed -> 3
    ft[m] = tf[m] = res[m]
    m = _eq(fc, "unclassified")
    s = np.where(np.isnan(speed), UNCLASSIFIED_DEFAULT_SPEED, speed)
    ft[m] = tf[m] = np.where(s <= 25, 1, 3)[m]
    m = _eq(fc, "living_street")
    ft[m] = tf[m] = np.where(_eq(bicycle, "no"), 3, 1)[m]
    m = _isin(fc, ("track", "path"))
    ft[m] = tf[m] = 1
    return ft, tf


def one_way_reset(one_way: np.ndarray, ft: np.ndarray, tf: np.ndarray) -> None:
    """§4.7: blank the seg stress of the direction bikes may not travel (in place)."""
    ft[_eq(one_way, "tf")] = np.nan
    tf[_eq(one_way, "ft")] = np.nan


def high_stress_cross(ways: Any, rrfb: np.ndarray, island: np.ndarray,
                      allowed: tuple[str, ...]) -> np.ndarray:
    """§5 ``high_stress_cross(W, I)`` for aligned arrays (one entry per (W, I) pair).

    ``ways`` is the W rows (aligned), ``rrfb``/``island`` the flags of I.
    """
    fc = ways["functional_class"].to_numpy(dtype=object)
    n = len(fc)
    out = np.zeros(n, dtype=bool)
    out |= _isin(fc, ("motorway", "trunk"))
    speed = _f(ways["speed_limit"])
    ftl, tfl = _f(ways["ft_lanes"]), _f(ways["tf_lanes"])
    two_way = ~_present(ways["one_way"].to_numpy(dtype=object))
    for cls in allowed:
        if cls not in CROSS_DEFAULTS:
            continue
        sd, ld = CROSS_DEFAULTS[cls]
        m = _eq(fc, cls)
        if not m.any():
            continue
        s = np.where(np.isnan(speed), sd, speed)
        total = np.where(np.isnan(ftl), ld, ftl) + np.where(np.isnan(tfl), ld, tfl)
        tw = np.select(
            [total > 4,
             (total == 4) & rrfb, (total < 4) & rrfb,
             (total == 4) & ~rrfb, (total < 4) & ~rrfb],
            [np.ones(n, bool),
             (s > 40) | ((s > 30) & (s <= 40) & ~island),
             (s > 35) & ~island,
             (s > 30) | ((s == 30) & ~island),
             (s > 30) & ~island],
            default=False)
        one = np.where(np.isnan(ftl), np.where(np.isnan(tfl), ld, tfl), ftl)
        ow = np.select([one > 2, (one == 2) & rrfb, (one < 2) & rrfb],
                       [np.ones(n, bool), s > 40, s > 35], default=s > 30)
        out |= m & np.where(two_way, tw, ow)
    return out


def intersection_stress(ways: Any, ints: Any, crossing_name_sentinels: bool
                        ) -> tuple[np.ndarray, np.ndarray]:
    """§5: ft_int_stress (at intersection_to) and tf_int_stress (at intersection_from)."""
    import pandas as pd

    n = len(ways)
    fc = ways["functional_class"].to_numpy(dtype=object)
    f = ways["intersection_from"].to_numpy(dtype=np.int64, na_value=-1)
    to = ways["intersection_to"].to_numpy(dtype=np.int64, na_value=-1)
    name = np.array([v if isinstance(v, str) else None for v in ways["name"].to_numpy(dtype=object)],
                    dtype=object)
    iid = ints["int_id"].to_numpy(dtype=np.int64)
    pos = pd.Series(np.arange(len(iid)), index=iid)
    sig = ints["signalized"].to_numpy(dtype=bool) | ints["stops"].to_numpy(dtype=bool)
    rrfb = ints["rrfb"].to_numpy(dtype=bool)
    island = ints["island"].to_numpy(dtype=bool)

    # incidence: (W row, I) for each distinct end of each segment
    rows = np.arange(n)
    not_loop = f != to
    inc_w = np.concatenate([rows, rows[not_loop]])
    inc_i = np.concatenate([f, to[not_loop]])
    inc_ip = pos.reindex(inc_i).to_numpy()
    ok = ~np.isnan(inc_ip)
    inc_w, inc_i, inc_ip = inc_w[ok], inc_i[ok], inc_ip[ok].astype(np.int64)
    w_rows = ways.iloc[inc_w]
    hsc_major = high_stress_cross(w_rows, rrfb[inc_ip], island[inc_ip],
                                  ("primary", "secondary"))
    hsc_minor = high_stress_cross(w_rows, rrfb[inc_ip], island[inc_ip],
                                  ("primary", "secondary", "tertiary"))
    inc = pd.DataFrame({"w": inc_w, "i": inc_i, "major": hsc_major, "minor": hsc_minor})
    inc = inc[inc["major"] | inc["minor"]]

    tertiary = _eq(fc, "tertiary")
    lesser = _isin(fc, ("residential", "unclassified", "living_street", "track", "path"))
    a, b = ("a", "b") if crossing_name_sentinels else ("\x00R", "\x00W")

    def crossing(at: np.ndarray) -> np.ndarray:
        stress = np.ones(n, dtype=np.int64)
        cand = tertiary | lesser
        p = pos.reindex(at).to_numpy()
        has = ~np.isnan(p)
        controlled = np.zeros(n, dtype=bool)
        controlled[has] = sig[p[has].astype(np.int64)]
        test = cand & has & ~controlled
        if not test.any() or inc.empty:
            return stress
        r = pd.DataFrame({"r": np.flatnonzero(test), "i": at[test]})
        pairs = r.merge(inc, on="i", how="inner")
        rn = np.array([v if v is not None else a for v in name[pairs["r"].to_numpy()]],
                      dtype=object)
        wn = np.array([v if v is not None else b for v in name[pairs["w"].to_numpy()]],
                      dtype=object)
        if not crossing_name_sentinels:  # corrected: two unnamed roads are different
            diff = (rn != wn) | (rn == a)
        else:
            diff = rn != wn
        rr = pairs["r"].to_numpy()
        hit = diff & np.where(tertiary[rr], pairs["major"].to_numpy(), pairs["minor"].to_numpy())
        stress[np.unique(rr[hit])] = 3
        return stress

    return crossing(to), crossing(f)


def compute_stress(s: RunState) -> Any:
    """Pipeline phase ``stress``: fill ft/tf seg and int stress of ``s.ways`` (§4, §5).

    Parameters
    ----------
    s : RunState
        Uses ``s.ways``, ``s.intersections``, ``s.speeds``, ``s.osm.lines`` (``bicycle`` tag)
        and ``s.params.quirks``.

    Returns
    -------
    GeoDataFrame
        ``s.ways`` with the four stress columns (nullable Int64).
    """
    import pandas as pd

    from pna_engine.speeds import residential_default

    ways = s.ways.copy()
    lines = s.osm.lines if s.osm is not None else None
    if lines is not None and "bicycle" in lines.columns:
        bike = lines.drop_duplicates("osm_id").set_index("osm_id")["bicycle"]
        bicycle = bike.reindex(ways["osm_id"].to_numpy()).to_numpy(dtype=object)
        bicycle = np.array([None if (v is None or v != v) else v for v in bicycle], dtype=object)
    else:
        bicycle = Tags(pd.DataFrame(index=range(len(ways))))("bicycle")
    ft, tf = segment_stress(ways, bicycle, residential_default(s.speeds))
    one_way_reset(ways["one_way"].to_numpy(dtype=object), ft, tf)
    ft_int, tf_int = intersection_stress(ways, s.intersections,
                                         s.params.quirks.crossing_name_sentinels)

    ways["ft_seg_stress"] = _int_array(ft)
    ways["tf_seg_stress"] = _int_array(tf)
    ways["ft_int_stress"] = _int_array(ft_int)
    ways["tf_int_stress"] = _int_array(tf_int)
    return ways
