"""The backend interface and the backend registry (as papermill registers its I/O handlers).

Every backend implements :class:`JobBackend`; :func:`get_client` picks one by name or from the
settings (``PNA_BACKEND``). Third parties can add one with :func:`register_backend`.
"""

from __future__ import annotations

import abc
import datetime as _dt
from collections.abc import Callable, Iterable
from typing import Any

from pna_engine.errors import InputError
from pna_helpers.config import Settings
from pna_helpers.jobs.model import ACTIVE, TERMINAL, Job, parse_time
from pna_helpers.jobs.request import AnalysisRequest


class JobError(InputError):
    """A job operation a user asked for cannot be done (unknown job id, nothing to cancel...)."""


class JobBackend(abc.ABC):
    """One API over every backend. Job ids are strings; methods taking ``job_ids`` accept one
    id, a :class:`Job` or a list of either."""

    #: Registry name (``local``, ``aws``).
    name: str = "?"

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def backend(self) -> str:
        """The backend's registered name (``local`` or ``aws``).

        Returns
        -------
        str
            The class's :attr:`name`.
        """
        return self.name

    # ------------------------------------------------------------------ operations
    @abc.abstractmethod
    def submit(self, request: AnalysisRequest) -> Job:
        """Queue one request.

        Parameters
        ----------
        request
            What to analyse (validated when made).

        Returns
        -------
        Job
            The new job (``SUBMITTED``).
        """

    def submit_many(self, requests: Iterable[AnalysisRequest]) -> list[Job]:
        """Queue many requests (AWS: one array job).

        Parameters
        ----------
        requests
            The requests, e.g. from :func:`~pna_helpers.jobs.read_places`.

        Returns
        -------
        list of Job
            One job per request, in order.
        """
        return [self.submit(r) for r in requests]

    @abc.abstractmethod
    def get(self, job_id: str) -> Job:
        """The job's current state.

        Parameters
        ----------
        job_id
            The job's id.

        Returns
        -------
        Job

        Raises
        ------
        JobError
            The id is unknown.
        """

    def refresh(self, job: Job) -> Job:
        """Update ``job`` in place from the backend.

        Parameters
        ----------
        job
            A job this backend returned earlier.

        Returns
        -------
        Job
            The same object, updated.
        """
        fresh = self.get(job.job_id)
        job.__dict__.update(fresh.__dict__)
        return job

    def get_many(self, job_ids: list[str]) -> list[Job]:
        """Jobs by id, in order (backends override this to batch the calls).

        Parameters
        ----------
        job_ids
            The ids.

        Returns
        -------
        list of Job
        """
        return [self.get(j) for j in job_ids]

    @abc.abstractmethod
    def list(self, status: str | Iterable[str] | None = None, place: str | None = None,
             since: _dt.datetime | str | None = None) -> list[Job]:
        """Jobs, newest first, optionally filtered.

        Parameters
        ----------
        status
            One status or several (``ACTIVE`` = not finished).
        place
            Only jobs of this place, compared as file-safe names on every backend
            (:func:`~pna_helpers.paths.slugify`: ``"Helsinki demo"`` matches ``"helsinki-demo"``).
        since
            Only jobs created since: a datetime, ISO text, or e.g. ``2h`` / ``3d``.

        Returns
        -------
        list of Job
        """

    def wait(self, job_ids: Any, timeout: float | None = None, progress: bool = True,
             poll: float | None = None) -> list[Job]:
        """Wait until every job is finished; show a tqdm bar (Batch status + engine phase).

        Parameters
        ----------
        job_ids
            One id, a :class:`Job`, or a list of either.
        timeout
            Give up after this many seconds (the jobs keep running).
        progress
            Show the progress bar.
        poll
            First polling interval, seconds (default :attr:`default_poll`; it backs off).

        Returns
        -------
        list of Job
            The finished jobs, in order.

        Raises
        ------
        WaitTimeout
            ``timeout`` passed first.
        """
        from pna_helpers.jobs.progress import wait_jobs

        return wait_jobs(self, _ids(job_ids), timeout=timeout, progress=progress,
                         poll=poll if poll is not None else self.default_poll)

    #: First polling interval of :meth:`wait`, seconds (it backs off from there).
    default_poll: float = 1.0
    max_poll: float = 30.0

    @abc.abstractmethod
    def _cancel_one(self, job: Job, reason: str) -> None:
        """Stop one active job."""

    def _cancel_many(self, jobs: list[Job], reason: str) -> None:
        """Stop active jobs (a backend may stop several with one call)."""
        for j in jobs:
            self._cancel_one(j, reason)

    def _refuse_uncancellable(self, jobs: list[Job]) -> None:
        """Raise :class:`JobError` before anything is cancelled if one of ``jobs`` cannot be
        cancelled as asked (a backend's own rule; none here)."""
        return None

    def cancel(self, job_ids: Any, reason: str = "cancelled by user") -> list[Job]:
        """Cancel jobs; a job that already finished is an error (nothing is cancelled then).

        Parameters
        ----------
        job_ids
            One id, a :class:`Job`, or a list of either.
        reason
            Recorded as the jobs' reason.

        Returns
        -------
        list of Job
            The jobs after cancelling.

        Raises
        ------
        JobError
            An id is unknown, or a job has finished.
        """
        jobs = list({j.job_id: j for j in self.get_many(_ids(job_ids))}.values())
        finished = [j for j in jobs if j.status in TERMINAL]
        if finished:
            desc = ", ".join(f"{j.job_id} ({j.status})" for j in finished)
            rest = [j.job_id for j in jobs if j.status not in TERMINAL]
            todo = (f"nothing was cancelled; to cancel the unfinished one(s): 'pna cancel "
                    f"{' '.join(rest)}'" if rest else
                    "nothing to cancel (use 'retry' to run a job again)")
            raise JobError(f"cannot cancel finished job(s) {desc}: {todo}")
        self._refuse_uncancellable(jobs)
        self._cancel_many(jobs, reason)
        return [self.get(j.job_id) for j in jobs]

    def cancel_all_active(self, reason: str = "cancelled by user") -> list[Job]:
        """Cancel every job that has not finished.

        Parameters
        ----------
        reason
            Recorded as the jobs' reason.

        Returns
        -------
        list of Job
            The cancelled jobs.
        """
        active = self.list(status=ACTIVE)
        self._cancel_many(active, reason)
        return [self.get(j.job_id) for j in active]

    def retry(self, job_ids: Any) -> list[Job]:
        """Submit failed or cancelled jobs again (new job ids, same requests).

        Parameters
        ----------
        job_ids
            One id, a :class:`Job`, or a list of either.

        Returns
        -------
        list of Job
            The new jobs, in order.

        Raises
        ------
        JobError
            A job is not failed or cancelled, or has no stored request.
        """
        jobs = self.get_many(_ids(job_ids))
        bad = [j for j in jobs if j.status not in ("FAILED", "CANCELLED")]
        if bad:
            desc = ", ".join(f"{j.job_id} ({j.status})" for j in bad)
            raise JobError(f"only failed or cancelled jobs can be retried; not {desc}")
        out = []
        for j in jobs:
            if not j.request:
                raise JobError(f"job {j.job_id} has no stored request to retry")
            out.append(self.submit(AnalysisRequest.from_dict(j.request, check_files=False)))
        return out

    @abc.abstractmethod
    def logs(self, job_id: str, tail: int | None = None) -> str:
        """The job's log.

        Parameters
        ----------
        job_id
            The job's id.
        tail
            Only the last ``tail`` lines (0: none, ``""``); None: the whole log.

        Returns
        -------
        str

        Raises
        ------
        JobError
            The id is unknown, or ``tail`` is negative or not a whole number
            (:func:`tail_lines`).
        """

    @abc.abstractmethod
    def results_location(self, job_id: str) -> str:
        """Where the job's results are.

        Parameters
        ----------
        job_id
            The job's id.

        Returns
        -------
        str
            A local folder or an ``s3://`` prefix (give it to :func:`~pna_helpers.results.load_results`).
        """


def _ids(job_ids: Any) -> list[str]:
    if isinstance(job_ids, str | Job):
        job_ids = [job_ids]
    out = [j.job_id if isinstance(j, Job) else str(j) for j in job_ids]
    if not out:
        raise JobError("no job ids given")
    return out


def tail_lines(tail: Any) -> int | None:
    """Check the ``tail`` argument of :meth:`JobBackend.logs` (and ``pna logs --tail``).

    Parameters
    ----------
    tail
        None (the whole log) or a whole number of lines >= 0 (0: no lines).

    Returns
    -------
    int or None

    Raises
    ------
    JobError
        A negative number or not a whole number (one line saying what to give).
    """
    import operator

    if tail is None:
        return None
    try:
        n = operator.index(tail)
    except TypeError:
        n = None
    if n is None or isinstance(tail, bool):
        raise JobError(f"tail must be a whole number of lines, got {tail!r}: give 0 or more "
                       "(or none for the whole log)")
    if n < 0:
        raise JobError(f"tail must be 0 or more lines, got {n}: give the number of last lines "
                       "to show (or none for the whole log)")
    return n


def since_filter(since: _dt.datetime | str | None) -> _dt.datetime | None:
    """Normalise a ``since`` argument.

    Parameters
    ----------
    since
        A datetime, ISO text, or e.g. ``2h`` / ``3d`` (that long ago); None for no filter.

    Returns
    -------
    datetime.datetime or None
        Aware UTC.

    Raises
    ------
    JobError
        Text that is neither.
    """
    if since is None or isinstance(since, _dt.datetime):
        return parse_time(since)
    s = str(since).strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if s[:-1].isdigit() and s[-1:] in units:
        return _dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=int(s[:-1]) * units[s[-1]])
    try:
        return parse_time(s)
    except ValueError:
        raise JobError(f"bad 'since' value {since!r}: use ISO time (2026-11-26T10:00) or "
                       "e.g. 2h / 3d") from None


def status_filter(status: str | Iterable[str] | None) -> set[str] | None:
    """Normalise a status filter and check the names.

    Parameters
    ----------
    status
        One status or several, any case; ``ACTIVE`` = every unfinished status.

    Returns
    -------
    set of str or None
        Upper-case statuses; None for no filter.

    Raises
    ------
    JobError
        An unknown status.
    """
    from pna_helpers.jobs.model import STATUSES

    if status is None:
        return None
    wanted = {status} if isinstance(status, str) else set(status)
    wanted = {s.upper() for s in wanted}
    if "ACTIVE" in wanted:
        wanted = (wanted - {"ACTIVE"}) | set(ACTIVE)
    bad = wanted - set(STATUSES)
    if bad:
        raise JobError(f"unknown status {', '.join(sorted(bad))}; use one of "
                       f"{', '.join(STATUSES)} or ACTIVE")
    return wanted


# --------------------------------------------------------------------------- registry
_BACKENDS: dict[str, Callable[..., JobBackend]] = {}


def register_backend(name: str, factory: Callable[..., JobBackend] | None = None):
    """Register a backend class/factory under ``name`` (usable as a decorator).

    Parameters
    ----------
    name
        The name :func:`get_client` and ``--backend`` use.
    factory
        Called with the settings to make the backend; omitted when used as ``@register_backend(name)``.

    Returns
    -------
    callable
        ``factory``, or the decorator.
    """
    def deco(f: Callable[..., JobBackend]):
        _BACKENDS[name] = f
        return f
    return deco(factory) if factory is not None else deco


def available_backends() -> list[str]:
    """Names of the registered job backends.

    Returns
    -------
    list of str
        Sorted, e.g. ``["aws", "local"]``.
    """
    _load_builtin()
    return sorted(_BACKENDS)


def _load_builtin() -> None:
    from pna_helpers.jobs import aws, local  # noqa: F401  (registration side effect)


def get_client(backend: str | None = None, settings: Settings | None = None,
               **overrides: Any) -> JobBackend:
    """The job client of a backend.

    Parameters
    ----------
    backend
        ``local`` or ``aws``; default from the settings (``PNA_BACKEND``, config file, else local).
    settings
        Settings to use (default: :meth:`Settings.load`).
    **overrides
        Settings fields, e.g. ``concurrency=2`` or ``job_queue="other"``; None values
        are ignored.

    Returns
    -------
    JobBackend
        A new client of the chosen backend (e.g. :class:`~pna_helpers.jobs.local.LocalBackend`).

    Raises
    ------
    InputError
        The backend name is not registered (see :func:`available_backends`), or a bad
        settings value or config file.
    """
    _load_builtin()
    if settings is None:
        settings = Settings.load(backend=backend, **overrides)
    elif overrides or backend:
        d = settings.to_dict()
        d.update({k: v for k, v in overrides.items() if v is not None})
        if backend:
            d["backend"] = backend
        settings = Settings.from_dict(d)
    name = settings.backend
    if name not in _BACKENDS:
        raise InputError(f"unknown jobs backend {name!r}; available: {', '.join(sorted(_BACKENDS))}")
    return _BACKENDS[name](settings)
