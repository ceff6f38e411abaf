"""The job model shared by every backend: :class:`Job` and its statuses.

Statuses are AWS Batch's (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED)
plus CANCELLED (local backend; on AWS a cancelled job is FAILED with a cancel reason). Next to
the status, ``phase`` is the engine's current phase read from its ``status.json``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

SUBMITTED = "SUBMITTED"
PENDING = "PENDING"
RUNNABLE = "RUNNABLE"
STARTING = "STARTING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

BATCH_STATUSES: tuple[str, ...] = (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED,
                                   FAILED)
STATUSES: tuple[str, ...] = (*BATCH_STATUSES, CANCELLED)
#: Not finished yet.
ACTIVE: frozenset[str] = frozenset({SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING})
#: Finished, for good.
TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})


def utcnow() -> _dt.datetime:
    """The current time, timezone-aware UTC.

    Returns
    -------
    datetime.datetime
    """
    return _dt.datetime.now(_dt.UTC)


def parse_time(value: Any) -> _dt.datetime | None:
    """ISO text, epoch milliseconds (Batch) or datetime -> aware UTC datetime (or None).

    Parameters
    ----------
    value : Any
        A datetime (naive ones are taken as UTC), ISO text (without offset: UTC), a number of
        epoch milliseconds, or None / ``""``.

    Returns
    -------
    datetime.datetime or None
        Timezone-aware; None for None or ``""``.

    Raises
    ------
    ValueError
        Text that is not ISO time.
    """
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
    if isinstance(value, int | float):
        return _dt.datetime.fromtimestamp(value / 1000.0, _dt.UTC)
    t = _dt.datetime.fromisoformat(str(value))
    return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)


@dataclass
class Job:
    """One analysis job, whatever the backend.

    Attributes
    ----------
    job_id
        Backend id (local: 12 hex digits; AWS: the Batch job id, ``<parent>:<index>`` for an
        array child).
    place
        The request's place name.
    status
        One of :data:`STATUSES`.
    phase
        The engine's current (or last) phase, from its ``status.json``; None before it starts.
    reason
        Why it failed or was cancelled (Batch ``statusReason`` and the engine's error).
    created_at, started_at, stopped_at
        UTC datetimes.
    results_uri
        Local folder or ``s3://bucket/results/<job_id>/``.
    backend
        ``local`` or ``aws``.
    array_parent, array_index
        For a child of an array job (AWS ``submit_many``).
    request
        The :class:`~pna_helpers.jobs.request.AnalysisRequest` as a dict.
    """

    job_id: str
    place: str | None = None
    status: str = SUBMITTED
    phase: str | None = None
    reason: str | None = None
    created_at: _dt.datetime | None = None
    started_at: _dt.datetime | None = None
    stopped_at: _dt.datetime | None = None
    results_uri: str | None = None
    backend: str = "local"
    array_parent: str | None = None
    array_index: int | None = None
    request: dict[str, Any] | None = None
    array_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def active(self) -> bool:
        """Not finished yet.

        Returns
        -------
        bool
            True while the status is one of :data:`ACTIVE`.
        """
        return self.status in ACTIVE

    @property
    def done(self) -> bool:
        """Finished for good: succeeded, failed or cancelled.

        Returns
        -------
        bool
            True when the status is one of :data:`TERMINAL`.
        """
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        """Finished and succeeded.

        Returns
        -------
        bool
        """
        return self.status == SUCCEEDED

    @property
    def duration_s(self) -> float | None:
        """Run time in seconds (so far, if still running).

        Returns
        -------
        float or None
            Rounded to 0.1 s; None before the job started.
        """
        if self.started_at is None:
            return None
        end = self.stopped_at or utcnow()
        return round((end - self.started_at).total_seconds(), 1)

    def label(self) -> str:
        """Short status text: ``RUNNING · connectivity``.

        Returns
        -------
        str
            The status, followed by the engine phase while the job is active and has one.
        """
        return f"{self.status} · {self.phase}" if self.phase and self.status in ACTIVE else self.status

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO text).

        Returns
        -------
        dict
            The job's fields (not ``extra``), datetimes as ISO text to the second.
        """
        out: dict[str, Any] = {}
        for k in ("job_id", "place", "status", "phase", "reason", "created_at", "started_at",
                  "stopped_at", "results_uri", "backend", "array_parent", "array_index",
                  "array_size", "request"):
            v = getattr(self, k)
            out[k] = v.isoformat(timespec="seconds") if isinstance(v, _dt.datetime) else v
        return out


def jobs_table(jobs: list[Job]) -> Any:
    """A pandas DataFrame of jobs for notebooks: id, place, status, phase, times, reason.

    Parameters
    ----------
    jobs : list of Job
        The jobs, e.g. from :meth:`JobBackend.list`.

    Returns
    -------
    pandas.DataFrame
        One row per job, in order: ``job_id``, ``place``, ``status``, ``phase``,
        ``created_at``, ``started_at``, ``stopped_at`` (UTC datetimes), ``duration_s``,
        ``reason``, ``results_uri``, ``backend``.
    """
    import pandas as pd

    cols = ["job_id", "place", "status", "phase", "created_at", "started_at", "stopped_at",
            "duration_s", "reason", "results_uri", "backend"]
    rows = [{**{c: getattr(j, c) for c in cols if c != "duration_s"},
             "duration_s": j.duration_s} for j in jobs]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("created_at", "started_at", "stopped_at"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df
