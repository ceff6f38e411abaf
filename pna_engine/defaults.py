"""Which defaults a segment's stress rests on (BNA-METHOD §4.2-§4.5, §5).

The stress rules fill missing OSM values with defaults: the speed of a class
(:data:`pna_engine.stress.HIGHER_ORDER_DEFAULTS`, the residential default of the city or
state, 25 mph on unclassified roads), the lanes of a higher-order road or of a crossed road
(:data:`pna_engine.stress.CROSS_DEFAULTS`), the 5 ft width of a painted lane. This module
records, per segment, each default the stress phase applied, with the value it used, so a
QA can ask which missing tags matter (:mod:`pna_helpers.qa`). It reads the ``ways`` table of
a run (features and stress columns); default runs do not call it, so exports do not change.

Parking (``ft_park``/``tf_park``) and a missing ``oneway`` are recorded too: bsa's stress does
not read parking, and a one-way flag changes the network's shape, so their score impact is
reported as such rather than re-scored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pna_engine.stress import (
    CROSS_DEFAULTS,
    DEFAULT_FACILITY_WIDTH,
    HIGHER_ORDER_DEFAULTS,
    UNCLASSIFIED_DEFAULT_SPEED,
)

#: The tags behind each recorded default (what a mapper would add).
DEFAULT_TAGS: dict[str, str] = {
    "speed": "maxspeed",
    "lanes": "lanes",
    "width": "cycleway:both:width",
    "parking": "parking:lane:both",
    "oneway": "oneway",
}


def _num(a: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float, na_value=np.nan)


def stress_defaults(ways: Any, residential_default: int | None) -> pd.DataFrame:
    """One row per segment (same order as ``ways``): the defaults its stress used.

    Parameters
    ----------
    ways : DataFrame
        ``neighborhood_ways`` of a run (functional_class, speed_limit, ft/tf_lanes,
        ft/tf_bike_infra, ft/tf_bike_infra_width, ft/tf_park, oneway, one_way_car).
    residential_default : int or None
        The residential default speed of the run (mph; None = none).

    Returns
    -------
    DataFrame
        ``speed_default`` (mph used, NaN = the tag was there or no default applies),
        ``lanes_default`` (lanes per direction used, NaN likewise; also when the road is
        crossed: §5 reads its lanes), ``width_default`` (ft used for a painted lane),
        ``parking_missing`` and ``oneway_missing`` (bool), and ``any_default`` (a speed,
        lanes or width default).
    """
    n = len(ways)
    fc = ways["functional_class"].astype(object).to_numpy()
    fc = np.array([v if isinstance(v, str) else None for v in fc], dtype=object)
    speed = _num(ways["speed_limit"])
    no_speed = np.isnan(speed)
    speed_default = np.full(n, np.nan)
    lanes_default = np.full(n, np.nan)
    for cls, (sd, ld) in HIGHER_ORDER_DEFAULTS.items():
        m = fc == cls
        speed_default[m & no_speed] = sd
        no_lanes = np.isnan(_num(ways["ft_lanes"])) | np.isnan(_num(ways["tf_lanes"]))
        lanes_default[m & no_lanes] = ld
    for cls, (_sd, ld) in CROSS_DEFAULTS.items():  # crossed roads (§5)
        m = (fc == cls) & np.isnan(lanes_default)
        no_lanes = np.isnan(_num(ways["ft_lanes"])) & np.isnan(_num(ways["tf_lanes"]))
        lanes_default[m & no_lanes] = ld
    if residential_default is not None:
        speed_default[(fc == "residential") & no_speed] = float(residential_default)
    speed_default[(fc == "unclassified") & no_speed] = UNCLASSIFIED_DEFAULT_SPEED
    width_default = np.full(n, np.nan)
    higher = np.isin(fc, list(HIGHER_ORDER_DEFAULTS))
    for d in ("ft", "tf"):
        lane = ways[f"{d}_bike_infra"].astype(object).to_numpy() == "lane"
        no_w = np.isnan(_num(ways[f"{d}_bike_infra_width"]))
        width_default[higher & lane & no_w] = DEFAULT_FACILITY_WIDTH
    roads = np.isin(fc, [*HIGHER_ORDER_DEFAULTS, "residential", "unclassified"])
    parking_missing = roads & np.isnan(_num(ways["ft_park"])) & np.isnan(_num(ways["tf_park"]))
    ow = ways["oneway"].astype(object).to_numpy() if "oneway" in ways.columns \
        else np.full(n, None, dtype=object)
    owc = ways["one_way_car"].astype(object).to_numpy()
    oneway_missing = higher & pd.isna(owc) & np.isin(ow, ("UNKNOWN", None, ""))
    out = pd.DataFrame({
        "speed_default": speed_default, "lanes_default": lanes_default,
        "width_default": width_default, "parking_missing": parking_missing,
        "oneway_missing": oneway_missing,
    }, index=ways.index)
    out["any_default"] = ~(np.isnan(speed_default) & np.isnan(lanes_default)
                           & np.isnan(width_default))
    return out
