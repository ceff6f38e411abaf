"""Default residential speed limits (BNA-METHOD §2.7).

The reference reads two PeopleForBikes CSVs (state and city defaults, mph). PNA takes the
values from ``--state-speed-limit`` / ``--city-speed-limit`` (the CSVs are not public data we
can ship). The table is written to ``residential_speed_limit.csv`` by the export as the
reference does: FIPS codes as unquoted values, blank-padded to ``char(2)`` / ``char(7)``
(the reference's non-US row reads ``0 ,0      ,,30``).

Non-US runs (reference behaviour, checked on the Helsinki oracle): the city default is the
``--city-speed-limit`` value (default 30 mph, the reference CLI default) and is written with
city code ``0``; the state default is empty. The oracle's ``residential_speed_limit.csv``
shows ``city_speed`` 30, i.e. the city default *was* found in that run (so §15 B11 did not
occur there); the residential stress therefore uses it. With 30 mph an untagged residential
street is stress 3 either way (30 > 25), so this choice only matters for a smaller value.
"""

from __future__ import annotations

from typing import Any

#: The reference CLI default of ``--city-speed-limit`` for non-US places (mph).
NON_US_DEFAULT_CITY_SPEED = 30


def _is_us(params: Any) -> bool:
    from pna_engine.population import is_us

    return is_us(getattr(params, "country", None))


def residential_speeds(params: Any) -> Any:
    """The ``residential_speed_limit`` table: one row.

    Parameters
    ----------
    params : Params
        Uses ``country``, ``state_fips``, ``city_fips``, ``state_speed_limit`` and
        ``city_speed_limit``.

    Returns
    -------
    pandas.DataFrame
        Columns ``state_fips_code, city_fips_code, state_speed, city_speed`` (speeds as
        nullable Int64, mph; codes as text padded like the reference's ``char`` columns).
    """
    import pandas as pd

    if _is_us(params):
        state_code = str(params.state_fips).zfill(2) if params.state_fips else None
        if state_code is None and getattr(params, "state", None):
            from pna_engine.download import STATE_FIPS

            state_code = STATE_FIPS.get(str(params.state).upper())
        city_code = str(params.city_fips).zfill(7) if params.city_fips else None
        state_speed = params.state_speed_limit
        city_speed = params.city_speed_limit
    else:
        state_code, city_code = "0 ", "0      "
        state_speed = None
        city_speed = (params.city_speed_limit if params.city_speed_limit is not None
                      else NON_US_DEFAULT_CITY_SPEED)
    return pd.DataFrame({
        "state_fips_code": pd.array([state_code], dtype="object"),
        "city_fips_code": pd.array([city_code], dtype="object"),
        "state_speed": pd.array([state_speed], dtype="Int64"),
        "city_speed": pd.array([city_speed], dtype="Int64"),
    })


def residential_default(speeds: Any) -> int | None:
    """The residential default speed: city default, else state default, else None (§4.4)."""
    import pandas as pd

    if speeds is None or len(speeds) == 0:
        return None
    row = speeds.iloc[0]
    for col in ("city_speed", "state_speed"):
        v = row.get(col)
        if v is not None and not pd.isna(v):
            return int(v)
    return None
