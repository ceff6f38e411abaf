"""Jobs per census block from LEHD LODES (BNA-METHOD §2.6), US runs only.

Jobs of a block = sum of ``S000`` over the rows of the ``main`` and ``aux`` origin-destination
files (job type JT00) whose work block ``w_geocode`` is the block id; 0 when absent. As the
reference's ``census_block_jobs.sql`` does, ``w_geocode`` is first right-padded with ``0`` to 15
characters (``rpad``, "in case we lost any trailing zeros"). The result has one row per
retained block (table ``neighborhood_census_block_jobs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pna_engine.state import RunState

REQUIRED_COLUMNS = ("w_geocode", "S000")


def read_lodes(path: str | Path) -> Any:
    """Sum ``S000`` per ``w_geocode`` of one LODES OD file (``.csv`` or ``.csv.gz``).

    Returns a Series indexed by the work block id (str, right-padded with ``0`` to 15
    characters like the reference's ``rpad(w_geocode, 15, '0')``).

    Raises
    ------
    InputError
        The file lacks the ``w_geocode`` / ``S000`` columns.
    """
    import pandas as pd

    from pna_engine.errors import InputError

    path = Path(path)
    try:
        header = pd.read_csv(path, nrows=0).columns.tolist()
    except Exception as exc:
        raise InputError(f"cannot read the LODES jobs file {path}: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"the jobs file {path} is not a LODES OD file: missing column(s) "
            f"{', '.join(missing)} (found {', '.join(header[:8]) or 'none'}); pass the "
            "<st>_od_main_JT00_<year>.csv and <st>_od_aux_JT00_<year>.csv files with --jobs")
    try:
        df = pd.read_csv(path, usecols=list(REQUIRED_COLUMNS),
                         dtype={"w_geocode": str, "S000": "int64"})
    except (ValueError, OverflowError) as exc:  # a value that is not a whole number
        _bad_count(path)  # names its line
        raise InputError(f"cannot read the LODES jobs file {path}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    except Exception as exc:  # malformed CSV, bad compression, undecodable bytes
        raise InputError(f"cannot read the LODES jobs file {path}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                         "download it again from LEHD") from exc
    negative = df["S000"].to_numpy() < 0
    if negative.any():
        _bad_count(path, int(negative.argmax()))
    ids = df["w_geocode"]
    if ids.isna().any():
        line = int(ids.isna().to_numpy().argmax()) + 2
        raise InputError(f"the LODES jobs file {path}, line {line}: w_geocode is empty; "
                         "expected a 15-digit census block id")
    df["w_geocode"] = ids.str.ljust(15, "0")
    return df.groupby("w_geocode", sort=False)["S000"].sum()


def _bad_count(path: Path, row: int | None = None) -> None:
    """Raise an :class:`InputError` naming the first data line whose ``S000`` is not a
    non-negative whole number (``row``: its 0-based data row, when already known)."""
    import pandas as pd

    from pna_engine.errors import InputError

    values = pd.read_csv(path, usecols=["S000"], dtype=str, keep_default_na=False)["S000"]
    if row is None:
        ok = values.str.strip().str.fullmatch(r"\+?\d+").fillna(False).to_numpy()
        if ok.all():
            return  # not a value problem: let the caller report the original error
        row = int((~ok).argmax())
    raise InputError(f"the LODES jobs file {path}, line {row + 2}: S000 (the job count) is "
                     f"{values.iloc[row]!r}, expected a whole number >= 0; fix or download "
                     "the file again")


def load_jobs(s: RunState) -> Any:
    """Jobs per retained block: DataFrame ``(blockid20, jobs)``, or None for non-US runs.

    Uses ``s.params.jobs`` (paths/URLs) or downloads the state's latest LODES8 files.
    Records ``s.inputs["jobs_main"]``/``["jobs_aux"]`` (or ``jobs_<n>``) and ``s.counts["jobs"]``.

    Parameters
    ----------
    s
        The run's state; reads ``s.params`` (jobs, country, state, lodes_year), ``s.blocks``.

    Returns
    -------
    pandas.DataFrame or None
        ``blockid20``, ``jobs``; None outside the US.
    """
    import pandas as pd

    from pna_engine import download

    params = s.params
    if not params.is_us:
        if params.jobs:
            s.notes.append("jobs: LODES files ignored in a non-US run (as in the reference)")
        return None
    if not params.jobs and _is_puerto_rico(params):
        # LEHD publishes no LODES for Puerto Rico: the reference's jobs table stays empty
        s.notes.append("jobs: no LODES data exists for Puerto Rico; every block has 0 jobs")
        sources: list[str] = []
    else:
        sources = list(params.jobs) or download.lodes_urls(params)
    totals = []
    for i, src in enumerate(sources):
        path = download.fetch(src, params, what="the LODES jobs file", option="--jobs")
        name = Path(path).name
        role = ("jobs_main" if "_od_main_" in name else "jobs_aux" if "_od_aux_" in name
                else f"jobs_{i}")
        if role in s.inputs:
            role = f"{role}_{i}"
        s.inputs[role] = str(path)
        totals.append(read_lodes(path))
    per_block = pd.concat(totals).groupby(level=0).sum() if totals else pd.Series(dtype="int64")
    ids = s.blocks["geoid20"].astype(str)
    jobs = per_block.reindex(ids.to_numpy()).fillna(0).astype("int64").to_numpy()
    out = pd.DataFrame({"blockid20": ids.to_numpy(), "jobs": jobs})
    s.counts["jobs"] = int(out["jobs"].sum())
    return out


def _is_puerto_rico(params: Any) -> bool:
    return (str(getattr(params, "state", "") or "").upper() == "PR"
            or str(getattr(params, "state_fips", "") or "").zfill(2) == "72")
