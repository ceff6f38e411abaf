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

US runs: a default the command line does not give is looked up, as the reference does, in
PeopleForBikes' public tables ``state_fips_speed.csv`` (``state, fips_code_state, speed``) and
``city_fips_speed.csv`` (``city, state, fips_code_city, speed``) at
``https://s3.amazonaws.com/pfb-public-documents/`` (``PNA_SPEED_LIMITS_BASE_URL`` for a mirror),
downloaded once into the cache. A state or city missing from the tables has no default (the
reference's NULL). With ``--offline`` or no network the lookup is skipped and the run says so in
its notes: a missing default is a normal case for the reference too, so it is not an error;
pass ``--state-speed-limit`` / ``--city-speed-limit`` to set them.
"""

from __future__ import annotations

from typing import Any

#: The reference CLI default of ``--city-speed-limit`` for non-US places (mph).
NON_US_DEFAULT_CITY_SPEED = 30

#: Where the reference downloads its state and city default speed tables.
SPEED_LIMITS_BASE_URL = "https://s3.amazonaws.com/pfb-public-documents"
STATE_TABLE = "state_fips_speed.csv"
CITY_TABLE = "city_fips_speed.csv"


def lookup_default_speed(table: str, code_column: str, code: str, params: Any,
                         notes: list[str] | None = None) -> int | None:
    """Speed (mph) of the row of a PeopleForBikes default-speed table whose FIPS code is ``code``.

    Parameters
    ----------
    table : str
        ``state_fips_speed.csv`` or ``city_fips_speed.csv``.
    code_column : str
        ``fips_code_state`` (compared as 2 digits) or ``fips_code_city`` (7 digits).
    code : str
        The run's zero-padded FIPS code.
    params : Params
        ``offline`` and ``cache_dir`` are used.
    notes : list of str, optional
        Receives one line when the table cannot be had or has no row for ``code``.

    Returns
    -------
    int or None
        None when the table is unavailable or has no such row (the reference's NULL).
    """
    import os

    import pandas as pd

    from pna_engine import download
    from pna_engine.errors import InputError, OfflineError

    option = "--state-speed-limit" if code_column == "fips_code_state" else "--city-speed-limit"
    base = os.environ.get("PNA_SPEED_LIMITS_BASE_URL", SPEED_LIMITS_BASE_URL).rstrip("/")
    url = f"{base}/{table}"
    say = notes.append if notes is not None else (lambda _msg: None)
    if getattr(params, "offline", False) and not download.cached_path(url, params).exists():
        say(f"--offline: the default speeds of {table} ({url}) were not looked up; "
            f"pass {option} MPH to set one")
        return None
    try:
        path = download.fetch(url, params, what=f"the default speed table {table}",
                              option=option)
        df = pd.read_csv(path, dtype=str)
    except OfflineError:
        say(f"{url} is unreachable: no default speed from {table}; pass {option} MPH to set one")
        return None
    except InputError as exc:
        say(f"{str(exc).splitlines()[0]}: no default speed from {table}")
        return None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        say(f"{table} from {url} is unreadable ({exc}); no default speed from it")
        return None
    if code_column not in df.columns or "speed" not in df.columns:
        say(f"{table} from {url} lacks the columns {code_column}, speed; "
            "no default speed from it")
        return None
    width = 2 if code_column == "fips_code_state" else 7
    codes = df[code_column].astype(str).str.strip().str.zfill(width)
    speed = pd.to_numeric(df.loc[codes == code, "speed"], errors="coerce").dropna()
    if speed.empty:
        say(f"{table} has no default speed for FIPS {code}")
        return None
    return int(speed.iloc[0])


def residential_speeds(params: Any, *, lookup: bool = False,
                       notes: list[str] | None = None) -> Any:
    """The ``residential_speed_limit`` table: one row.

    Parameters
    ----------
    params : Params
        Uses ``country``, ``state_fips``, ``city_fips``, ``state_speed_limit`` and
        ``city_speed_limit``.
    lookup : bool
        US: look the defaults the command line does not give up in PeopleForBikes' tables
        (:func:`lookup_default_speed`; may download). The pipeline sets it.
    notes : list of str, optional
        Receives what the lookup could not do.

    Returns
    -------
    pandas.DataFrame
        Columns ``state_fips_code, city_fips_code, state_speed, city_speed`` (speeds as
        nullable Int64, mph; codes as text padded like the reference's ``char`` columns).
    """
    import pandas as pd

    if params.is_us:
        state_code = str(params.state_fips).zfill(2) if params.state_fips else None
        if state_code is None and getattr(params, "state", None):
            from pna_engine.params import STATE_FIPS

            state_code = STATE_FIPS.get(str(params.state).upper())
        city_code = str(params.city_fips).zfill(7) if params.city_fips else None
        state_speed = params.state_speed_limit
        city_speed = params.city_speed_limit
        if lookup and state_speed is None and state_code is not None:
            state_speed = lookup_default_speed(STATE_TABLE, "fips_code_state", state_code,
                                               params, notes)
        if lookup and city_speed is None and city_code is not None:
            city_speed = lookup_default_speed(CITY_TABLE, "fips_code_city", city_code, params,
                                              notes)
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
