"""Waiting for jobs with a progress bar (``tqdm.auto``: a widget in notebooks, text elsewhere).

One job: the bar counts the engine's phases and its text shows the Batch status and phase.
Several jobs: the bar counts finished jobs and its text counts jobs per status.
Polling starts at ``poll`` seconds and backs off (x1.5) to the backend's ``max_poll``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from pna_engine import PHASES
from pna_engine.errors import InputError

if TYPE_CHECKING:
    from pna_helpers.jobs.base import JobBackend
    from pna_helpers.jobs.model import Job


class WaitTimeout(InputError):
    """:meth:`JobBackend.wait` ran out of time; the jobs keep running."""


def describe(jobs: list[Job]) -> str:
    """Bar text: ``RUNNING · connectivity`` for one job, ``2 RUNNING, 1 SUCCEEDED`` for many.

    Parameters
    ----------
    jobs : list of Job
        The jobs being waited for.

    Returns
    -------
    str
        One job: its :meth:`Job.label`; several: counts per status, statuses sorted by name.
    """
    if len(jobs) == 1:
        return jobs[0].label()
    counts = Counter(j.status for j in jobs)
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def _phase_steps(job: Job) -> int:
    if job.status == "SUCCEEDED":
        return len(PHASES)
    if job.phase in PHASES:
        return PHASES.index(job.phase)
    return 0


def wait_jobs(client: JobBackend, job_ids: list[str], timeout: float | None = None,
              progress: bool = True, poll: float = 1.0) -> list[Job]:
    """Poll ``client`` until every job in ``job_ids`` is finished; return the jobs.

    The implementation of :meth:`JobBackend.wait`.

    Parameters
    ----------
    client : JobBackend
        The backend to poll (its ``get_many``; ``max_poll`` caps the back-off).
    job_ids : list of str
        The ids to wait for.
    timeout : float or None, optional
        Give up after this many seconds; None (default) waits for ever.
    progress : bool, optional
        Show the tqdm bar (default True).
    poll : float, optional
        First polling interval in seconds (default 1.0); it grows x1.5 per poll.

    Returns
    -------
    list of Job
        The finished jobs, in the order of ``job_ids``.

    Raises
    ------
    WaitTimeout
        When ``timeout`` seconds pass first (the message lists the unfinished jobs).
    """
    from tqdm.auto import tqdm

    start = time.monotonic()
    jobs = client.get_many(job_ids)
    single = len(jobs) == 1
    total = len(PHASES) if single else len(jobs)
    desc = jobs[0].place or jobs[0].job_id if single else f"{len(jobs)} jobs"
    # no rate: "0.3phase/s" or "80832.41phase/s" (a finished job) says nothing about a run
    bar = tqdm(total=total, desc=desc, disable=not progress, unit="phase" if single else "job",
               leave=True, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} {unit}s [{elapsed}{postfix}]")
    interval = poll
    try:
        while True:
            n = _phase_steps(jobs[0]) if single else sum(j.done for j in jobs)
            bar.n = n
            bar.set_postfix_str(describe(jobs), refresh=False)
            bar.refresh()
            if all(j.done for j in jobs):
                return jobs
            if timeout is not None and time.monotonic() - start >= timeout:
                left = ", ".join(f"{j.job_id} ({j.label()})" for j in jobs if not j.done)
                raise WaitTimeout(f"timed out after {timeout:g} s waiting for {left}; the jobs "
                                  "keep running (wait again, or cancel them)")
            sleep = interval
            if timeout is not None:
                sleep = max(0.05, min(sleep, timeout - (time.monotonic() - start)))
            time.sleep(sleep)
            interval = min(interval * 1.5, client.max_poll)
            jobs = client.get_many(job_ids)
    finally:
        bar.close()
