"""The local backend: AWS Batch's job lifecycle on this machine, offline.

* Jobs live in SQLite (``outputs/jobs.sqlite``; WAL, busy timeout, ``BEGIN IMMEDIATE``
  transactions), so several notebooks and shells can share the store.
* Each started job gets a detached *supervisor* process (own session, reparented to init) that
  runs exactly the container command, ``python -m pna_engine run-job``, with the container
  environment (``PNA_REQUEST``, ``PNA_RESULTS_URI``, ``PNA_JOB_ID``); it writes
  ``outputs/logs/<job_id>.log``, records its pid / process group, heartbeats, and records the
  outcome. Results go to ``outputs/results/<job_id>/``.
* At most ``concurrency`` jobs run at once (default 1; each job records the limit of the
  client that submitted it, and queued jobs start in order while fewer than their limit run);
  queued jobs are started by whichever process next touches the store, or by a finishing
  supervisor.
* With ``places_per_worker`` N > 1 (``PNA_PLACES_PER_WORKER``, recorded per job), a
  supervisor imports the engine once and, after its job, claims the next queued job itself
  (same concurrency rule), up to N jobs: each runs in a child forked from it (own process
  group, log and environment - the container command's ``run-job`` entry point in-process),
  as an AWS array child runs many places in one container. This removes the interpreter
  start-up and imports from every place but the first.
* Cancel marks the job CANCELLED, then kills the job's whole process group (SIGTERM, then
  SIGKILL). A job whose supervisor died (kernel restart, crash, kill -9) is found on the next
  API call and marked FAILED with that reason - never left RUNNING.

Status mapping: SUBMITTED (just queued) -> RUNNABLE (waiting for a slot) -> STARTING
(supervisor launching) -> RUNNING -> SUCCEEDED / FAILED / CANCELLED.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pna_engine.errors import InputError, StorageError, storage_error
from pna_engine.status import mark_failed, read_status
from pna_helpers.config import Settings
from pna_helpers.jobs.base import (
    JobBackend,
    JobError,
    register_backend,
    since_filter,
    status_filter,
    tail_lines,
)
from pna_helpers.jobs.model import (
    ACTIVE,
    CANCELLED,
    FAILED,
    RUNNABLE,
    RUNNING,
    STARTING,
    SUBMITTED,
    SUCCEEDED,
    Job,
    parse_time,
    utcnow,
)
from pna_helpers.jobs.request import AnalysisRequest
from pna_helpers.paths import is_utf8, outputs_label, slugify

HEARTBEAT_S = 2.0
#: A running job whose heartbeat is older than this is presumed dead (other host, frozen pid).
STALE_S = 60.0
#: A STARTING job whose supervisor never registered within this time failed to launch.
LAUNCH_TIMEOUT_S = 60.0
CANCEL_GRACE_S = 10.0
#: Seconds a store operation waits for another process's write transaction.
BUSY_TIMEOUT_S = 60.0
#: The store is copied to ``jobs.sqlite.bak`` at most this often (seconds).
BACKUP_EVERY_S = 600.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    place TEXT,
    status TEXT NOT NULL,
    phase TEXT,
    reason TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    stopped_at TEXT,
    results_uri TEXT,
    request TEXT NOT NULL,
    array_parent TEXT,
    array_index INTEGER,
    pid INTEGER,
    pgid INTEGER,
    host TEXT,
    heartbeat REAL,
    exit_code INTEGER,
    concurrency INTEGER NOT NULL DEFAULT 1,
    chain INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""


def container_command() -> list[str]:
    """The job container's command, run locally: ``python -m pna_engine run-job``.

    Returns
    -------
    list of str
        The argv, with this interpreter (``sys.executable``) as the Python.
    """
    return [sys.executable, "-m", "pna_engine", "run-job"]


def _iso(t: _dt.datetime | None = None) -> str:
    return (t or utcnow()).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------- store
class Store:
    """The SQLite job store (one connection per call; safe across processes).

    A damaged store (``jobs.sqlite`` overwritten, truncated, a disk fault) is an error naming
    the file and how to recover: move it aside, or restore ``jobs.sqlite.bak``, the copy made
    at most every :data:`BACKUP_EVERY_S` seconds while the store was healthy.
    """

    def __init__(self, outputs: Path):
        self.outputs = Path(outputs)
        self.path = self.outputs / "jobs.sqlite"
        self.backup_path = self.outputs / "jobs.sqlite.bak"
        self.logs_dir = self.outputs / "logs"
        self.results_dir = self.outputs / "results"
        if self.outputs.exists() and not self.outputs.is_dir() and not self.outputs.is_file():
            # a device, pipe or socket (PNA_OUTPUTS=/dev/null): mkdir says only "File exists"
            raise StorageError(f"cannot write the job store in "
                               f"{outputs_label(self.outputs)}: {self.outputs} is not a folder; "
                               "choose a folder path")
        for d in (self.outputs, self.logs_dir, self.results_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise storage_error(exc, f"the job store in {outputs_label(self.outputs)}") from exc
        with self.connect() as con:
            con.executescript(SCHEMA)
            cols = {r[1] for r in con.execute("PRAGMA table_info(jobs)")}
            if "concurrency" not in cols:  # a store from an older PNA
                con.execute("ALTER TABLE jobs ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 1")
            if "chain" not in cols:
                con.execute("ALTER TABLE jobs ADD COLUMN chain INTEGER NOT NULL DEFAULT 1")
        self._backup()

    def _backup(self) -> None:
        """Copy the store to ``jobs.sqlite.bak`` (atomically) when that copy is missing or
        older than :data:`BACKUP_EVERY_S`."""
        try:
            if time.time() - self.backup_path.stat().st_mtime < BACKUP_EVERY_S:
                return
        except OSError:
            pass
        from pna_engine.atomic import atomic_path

        with contextlib.suppress(OSError, sqlite3.Error), atomic_path(self.backup_path) as tmp:
            src = sqlite3.connect(self.path, timeout=60)
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()

    def _error(self, exc: sqlite3.Error) -> InputError:
        """One line for a failed store operation, with what to do."""
        msg = str(exc) or type(exc).__name__
        low = msg.lower()
        where = outputs_label(self.outputs)
        if isinstance(exc, sqlite3.OperationalError):
            if "readonly" in low or "read-only" in low or "unable to open" in low:
                return StorageError(f"cannot write the job store {self.path} ({msg}): "
                                    f"{where} must be a writable folder")
            if "full" in low:
                return StorageError(f"the disk holding the job store {self.path} is full "
                                    f"({msg}): free some space")
            if "locked" in low or "busy" in low:
                return JobError(f"the job store {self.path} stayed locked by another process "
                                f"for {BUSY_TIMEOUT_S:.0f} s ({msg}); try again")
        restore = ""
        if self.backup_path.exists():
            when = _dt.datetime.fromtimestamp(self.backup_path.stat().st_mtime, _dt.UTC)
            restore = (f", or restore the copy of {when:%Y-%m-%d %H:%M} UTC with "
                       f"'cp {self.backup_path} {self.path}'")
        return JobError(f"the job store {self.path} is damaged ({msg}): move it aside with "
                        f"'mv {self.path} {self.path}.broken' and PNA starts an empty store "
                        f"(results and logs stay in {self.outputs}){restore}")

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to the store (autocommit, WAL, busy timeout), closed on exit.

        Yields
        ------
        sqlite3.Connection
            Rows as :class:`sqlite3.Row`.

        Raises
        ------
        JobError
            The store is damaged or stayed locked for :data:`BUSY_TIMEOUT_S` seconds (the
            message says how to recover).
        StorageError
            The store's folder is not writable or its disk is full.
        """
        try:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            yield con
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            con.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: one writer at a time, no lost updates).

        Committed when the block ends, rolled back if it raises.

        Yields
        ------
        sqlite3.Connection
            The connection, inside the transaction.

        Raises
        ------
        JobError, StorageError
            As :meth:`connect`.
        """
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise

    def row(self, job_id: str) -> sqlite3.Row | None:
        """The stored row of one job.

        Parameters
        ----------
        job_id : str
            The job's id.

        Returns
        -------
        sqlite3.Row or None
            Every column of ``jobs``; None for an unknown id (one that is not UTF-8 text
            cannot be stored, so it is unknown too).
        """
        if not is_utf8(job_id):
            return None
        with self.connect() as con:
            return con.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()

    def log_path(self, job_id: str) -> Path:
        """Where the job's log is (or will be) written.

        Parameters
        ----------
        job_id : str
            The job's id.

        Returns
        -------
        Path
            ``<outputs>/logs/<job_id>.log`` (it need not exist).
        """
        return self.logs_dir / f"{job_id}.log"

    def results_path(self, job_id: str) -> Path:
        """The job's results folder.

        Parameters
        ----------
        job_id : str
            The job's id.

        Returns
        -------
        Path
            ``<outputs>/results/<job_id>`` (it need not exist).
        """
        return self.results_dir / job_id




# --------------------------------------------------------------------------- processes
def _proc_alive(pid: int | None, job_id: str) -> bool:
    """Is ``pid`` a live (non-zombie) supervisor of ``job_id`` on this host?"""
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.parent.exists() and Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            cmdline = (proc / "cmdline").read_bytes()
            # a chaining supervisor runs jobs claimed after it started (not in its cmdline)
            return job_id.encode() in cmdline or (b"supervise" in cmdline
                                                  and b"--chain" in cmdline)
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int | None) -> bool:
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if Path("/proc/self").exists():  # zombies still count for killpg; look closer
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
        return False
    return True


def kill_group(pgid: int | None, grace: float = CANCEL_GRACE_S) -> bool:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds; True if it is gone.

    Parameters
    ----------
    pgid : int or None
        The process group id. None, 0, 1 or this process's own group: nothing is signalled
        (and True is returned).
    grace : float, optional
        Seconds between SIGTERM and SIGKILL (default :data:`CANCEL_GRACE_S`); after SIGKILL
        it waits up to 5 s more.

    Returns
    -------
    bool
        True when no live (non-zombie) process is left in the group.
    """
    if not pgid or pgid <= 1 or pgid == os.getpgrp():
        return True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- backend
@register_backend("local")
class LocalBackend(JobBackend):
    """Jobs on this machine (see the module docstring)."""

    name = "local"
    default_poll = 0.5
    max_poll = 3.0

    def __init__(self, settings: Settings | None = None):
        super().__init__(settings or Settings.load(backend="local"))
        self.store = Store(self.settings.outputs)

    @property
    def concurrency(self) -> int:
        """Jobs this client lets run at once (recorded with each job it submits).

        Returns
        -------
        int
            ``settings.concurrency``.
        """
        return self.settings.concurrency

    # ------------------------------------------------------------------ helpers
    def _job(self, r: sqlite3.Row) -> Job:
        status, phase, reason = r["status"], r["phase"], r["reason"]
        if status in (RUNNING, STARTING):  # live phase from the engine's status file
            st = read_status(Path(r["results_uri"]))
            phase = st.get("phase") or phase
        return Job(
            job_id=r["job_id"], place=r["place"], status=status, phase=phase, reason=reason,
            created_at=parse_time(r["created_at"]), started_at=parse_time(r["started_at"]),
            stopped_at=parse_time(r["stopped_at"]), results_uri=r["results_uri"],
            backend="local", array_parent=r["array_parent"], array_index=r["array_index"],
            request=json.loads(r["request"]),
            extra={"pid": r["pid"], "pgid": r["pgid"], "exit_code": r["exit_code"],
                   "log": str(self.store.log_path(r["job_id"]))},
        )

    def _row_or_fail(self, job_id: str) -> sqlite3.Row:
        r = self.store.row(job_id)
        if r is None:
            raise JobError(f"unknown job id {job_id!r} in the local job store "
                           f"{self.store.path} (see 'pna list')")
        return r

    def _reconcile(self) -> None:
        """Mark jobs whose supervisor died as FAILED, then start queued jobs."""
        now = time.time()
        host = socket.gethostname()
        with self.store.connect() as con:
            rows = con.execute("SELECT job_id, status, pid, pgid, host, heartbeat FROM jobs "
                               "WHERE status IN (?, ?)", (STARTING, RUNNING)).fetchall()
        dead: list[tuple[str, str, int | None]] = []
        for r in rows:
            hb = r["heartbeat"] or 0.0
            if r["status"] == STARTING and r["pid"] is None:
                if now - hb > LAUNCH_TIMEOUT_S:
                    dead.append((r["job_id"], "the job's supervisor process never started",
                                 None))
                continue
            same_host = r["host"] == host
            if (same_host and not _proc_alive(r["pid"], r["job_id"])) or now - hb > STALE_S:
                why = (f"the job's supervisor process (pid {r['pid']}) died - kernel restart, "
                       "crash or kill; retry the job")
                dead.append((r["job_id"], why, r["pgid"] if same_host else None))
        for job_id, why, pgid in dead:
            with self.store.tx() as con:
                n = con.execute("UPDATE jobs SET status = ?, reason = ?, stopped_at = ? WHERE "
                                "job_id = ? AND status IN (?, ?)",
                                (FAILED, why, _iso(), job_id, STARTING, RUNNING)).rowcount
            if n:
                kill_group(pgid, grace=2.0)
                mark_failed(self.store.results_path(job_id), why)
                _append_log(self.store.log_path(job_id), f"[pna-local] FAILED: {why}")
        dispatch(self.store)

    # ------------------------------------------------------------------ API
    def submit(self, request: AnalysisRequest) -> Job:
        """Queue ``request``; it starts when a slot is free (see ``concurrency``).

        See :meth:`JobBackend.submit`.

        Parameters
        ----------
        request : AnalysisRequest
            What to analyse.

        Returns
        -------
        Job
            The new job: RUNNABLE, or STARTING / RUNNING if a slot was free.

        Raises
        ------
        JobError
            ``request`` is not an :class:`AnalysisRequest`.
        """
        return self._insert([request])[0]

    def submit_many(self, requests: Iterable[AnalysisRequest]) -> list[Job]:
        """Queue many requests, one job each (same API as the AWS array job).

        See :meth:`JobBackend.submit_many`.

        Parameters
        ----------
        requests : Iterable of AnalysisRequest
            The requests, e.g. from :func:`~pna_helpers.jobs.read_places`.

        Returns
        -------
        list of Job
            One job per request, in order (none: ``[]``, as on AWS).

        Raises
        ------
        JobError
            An item that is not an :class:`AnalysisRequest`.
        """
        reqs = list(requests)
        if not reqs:
            return []
        return self._insert(reqs)

    def _insert(self, requests: list[AnalysisRequest]) -> list[Job]:
        for r in requests:
            if not isinstance(r, AnalysisRequest):
                raise JobError(f"expected an AnalysisRequest, got {type(r).__name__}")
        ids = []
        with self.store.tx() as con:
            for req in requests:
                job_id = uuid.uuid4().hex[:12]
                con.execute(
                    "INSERT INTO jobs(job_id, place, status, created_at, results_uri, request, "
                    "concurrency, chain) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                    (job_id, req.place, SUBMITTED, _iso(),
                     str(self.store.results_path(job_id)), req.to_json(),
                     self.settings.concurrency, self.settings.places_per_worker))
                ids.append(job_id)
        self._reconcile()
        return [self._job(self._row_or_fail(i)) for i in ids]

    def get(self, job_id: str) -> Job:
        """The job's current state (after marking dead jobs FAILED and starting queued ones).

        See :meth:`JobBackend.get`.

        Parameters
        ----------
        job_id : str
            The job's id.

        Returns
        -------
        Job
            With the live engine phase while it is STARTING or RUNNING.

        Raises
        ------
        JobError
            The id is not in the local job store.
        """
        self._reconcile()
        return self._job(self._row_or_fail(str(job_id)))

    def get_many(self, job_ids: list[str]) -> list[Job]:
        """Jobs by id, in order. See :meth:`JobBackend.get_many`.

        Parameters
        ----------
        job_ids : list of str
            The ids.

        Returns
        -------
        list of Job

        Raises
        ------
        JobError
            An id is not in the local job store.
        """
        self._reconcile()
        return [self._job(self._row_or_fail(str(j))) for j in job_ids]

    def list(self, status: str | Iterable[str] | None = None, place: str | None = None,
             since: _dt.datetime | str | None = None) -> list[Job]:
        """Jobs in the local store, newest first, optionally filtered.

        See :meth:`JobBackend.list`.

        Parameters
        ----------
        status : str or Iterable of str or None, optional
            One status or several (``ACTIVE`` = not finished); None (default): all.
        place : str or None, optional
            Only jobs of this place (compared as file-safe names,
            :func:`~pna_helpers.paths.slugify`, as the AWS backend does: ``"Helsinki demo"``,
            ``"helsinki-demo"`` and ``"HELSINKI  DEMO!"`` are one place).
        since : datetime.datetime or str or None, optional
            Only jobs created since: a datetime, ISO text, or e.g. ``2h`` / ``3d``.

        Returns
        -------
        list of Job

        Raises
        ------
        JobError
            An unknown status or a bad ``since``.
        """
        self._reconcile()
        where, args = [], []
        wanted = status_filter(status)
        if wanted:
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            args += sorted(wanted)
        t = since_filter(since)
        if t is not None:
            where.append("created_at >= ?")
            args.append(_iso(t.astimezone(_dt.UTC)))
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        with self.store.connect() as con:
            rows = con.execute(sql + " ORDER BY created_at DESC, rowid DESC", args).fetchall()
        if place:
            want = slugify(place)
            rows = [r for r in rows if r["place"] and slugify(r["place"]) == want]
        return [self._job(r) for r in rows]

    def _cancel_one(self, job: Job, reason: str) -> None:
        with self.store.tx() as con:
            r = con.execute("SELECT status, pgid FROM jobs WHERE job_id = ?",
                            (job.job_id,)).fetchone()
            if r is None or r["status"] not in ACTIVE:
                return
            con.execute("UPDATE jobs SET status = ?, reason = ?, stopped_at = ? WHERE job_id = ?",
                        (CANCELLED, reason, _iso(), job.job_id))
        kill_group(r["pgid"])  # returns once the group is gone: the folder is final now
        folder = self.store.results_path(job.job_id)
        if read_status(folder, live=False).get("state") == "succeeded":
            # the engine published its results before the cancel stopped it: the job did
            # succeed, and saying CANCELLED beside a complete folder would be a lie
            late = "finished before the cancel arrived"
            with self.store.tx() as con:
                con.execute("UPDATE jobs SET status = ?, reason = ? WHERE job_id = ? AND "
                            "status = ?", (SUCCEEDED, late, job.job_id, CANCELLED))
            _append_log(self.store.log_path(job.job_id), f"[pna-local] SUCCEEDED: {late}")
            return
        # status.json says why, also over the stopped engine's own "interrupted"
        mark_failed(folder, f"cancelled: {reason}", replace_error=True)
        _append_log(self.store.log_path(job.job_id), f"[pna-local] CANCELLED: {reason}")

    def cancel(self, job_ids: Any, reason: str = "cancelled by user") -> list[Job]:
        """Cancel jobs, then start queued jobs in the freed slots.

        See :meth:`JobBackend.cancel`.

        Parameters
        ----------
        job_ids : Any
            One id, a :class:`Job`, or a list of either.
        reason : str, optional
            Recorded as the jobs' reason.

        Returns
        -------
        list of Job
            The jobs after cancelling: CANCELLED, or SUCCEEDED (reason "finished before the
            cancel arrived") for a job whose engine had published its results first.

        Raises
        ------
        JobError
            An id is unknown, or a job has finished.
        """
        out = super().cancel(job_ids, reason)
        dispatch(self.store)
        return out

    def logs(self, job_id: str, tail: int | None = None) -> str:
        """The job's log file (engine output and the supervisor's ``[pna-local]`` lines).

        See :meth:`JobBackend.logs`.

        Parameters
        ----------
        job_id : str
            The job's id.
        tail : int or None, optional
            Only the last ``tail`` lines (0: none); None (default): the whole log.

        Returns
        -------
        str
            ``""`` when the job has no log yet or ``tail`` is 0.

        Raises
        ------
        JobError
            The id is not in the local job store, or ``tail`` is negative or not a whole
            number.
        """
        tail = tail_lines(tail)
        self._row_or_fail(str(job_id))
        p = self.store.log_path(str(job_id))
        if not p.exists():
            return ""
        text = p.read_text(encoding="utf-8", errors="replace")
        if tail is not None:
            lines = text.splitlines()
            text = "".join(line + "\n" for line in lines[len(lines) - tail:]) if tail else ""
        return text

    def results_location(self, job_id: str) -> str:
        """The job's local results folder. See :meth:`JobBackend.results_location`.

        Parameters
        ----------
        job_id : str
            The job's id.

        Returns
        -------
        str
            ``<outputs>/results/<job_id>``.

        Raises
        ------
        JobError
            The id is not in the local job store.
        """
        return self._row_or_fail(str(job_id))["results_uri"]


def _append_log(path: Path, line: str) -> None:
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as f:
        f.write(f"{_iso()} {line}\n")


# --------------------------------------------------------------------------- dispatch
def dispatch(store: Store) -> list[str]:
    """Start queued jobs, oldest first, while fewer jobs run than the next one's
    ``concurrency``; return the started ids.

    Started jobs become STARTING and get a detached supervisor; the other queued ones become
    RUNNABLE.

    Parameters
    ----------
    store : Store
        The job store.

    Returns
    -------
    list of str
        The ids of the jobs started, oldest first.
    """
    with store.tx() as con:
        busy = con.execute("SELECT count(*) FROM jobs WHERE status IN (?, ?)",
                           (STARTING, RUNNING)).fetchone()[0]
        queued = con.execute(
            "SELECT job_id, concurrency, chain FROM jobs WHERE status IN (?, ?) "
            "ORDER BY created_at, rowid", (SUBMITTED, RUNNABLE)).fetchall()
        start: list[str] = []
        chains: dict[str, int] = {}
        for job_id, limit, chain in queued:
            if busy >= max(1, limit or 1):
                break
            start.append(job_id)
            chains[job_id] = max(1, chain or 1)
            busy += 1
        queued = [r[0] for r in queued]
        for job_id in start:
            con.execute("UPDATE jobs SET status = ?, heartbeat = ? WHERE job_id = ?",
                        (STARTING, time.time(), job_id))
        for job_id in queued[len(start):]:
            con.execute("UPDATE jobs SET status = ? WHERE job_id = ? AND status = ?",
                        (RUNNABLE, job_id, SUBMITTED))
    for job_id in start:
        _launch(store, job_id, chains[job_id])
    return start


def _launch(store: Store, job_id: str, chain: int = 1) -> None:
    """Start the detached supervisor of ``job_id`` (it daemonises itself at once)."""
    cmd = [sys.executable, "-m", "pna_helpers.jobs.local", "supervise", job_id,
           str(store.outputs)] + (["--chain", str(chain)] if chain > 1 else [])
    with open(store.log_path(job_id), "ab") as errf:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=errf, start_new_session=True, close_fds=True)
        p.wait()  # the first process forks the supervisor and exits: no zombie is left behind
    if p.returncode != 0:
        with store.tx() as con:
            con.execute("UPDATE jobs SET status = ?, reason = ?, stopped_at = ? WHERE job_id = ? "
                        "AND status = ?", (FAILED, f"could not start the supervisor (exit "
                                                   f"{p.returncode}); see the job log", _iso(),
                                           job_id, STARTING))


def supervise(job_id: str, outputs: str, chain: int = 1) -> int:
    """Body of the supervisor process: run the container command for ``job_id``; with
    ``chain`` > 1, then claim and run queued jobs itself, up to ``chain`` jobs in all.

    Run as ``python -m pna_helpers.jobs.local supervise JOB_ID OUTPUTS [--chain N]``; it forks
    at once (the parent exits 0) so the supervisor is re-parented to init.

    Parameters
    ----------
    job_id : str
        A STARTING job; anything else (e.g. cancelled meanwhile) returns at once.
    outputs : str
        The outputs folder holding the job store.
    chain : int, optional
        Jobs to run in this process, default 1; with more, each runs in a forked child.

    Returns
    -------
    int
        0 (the exit code of the supervisor; a job's outcome is recorded in the store).
    """
    if hasattr(os, "fork") and os.fork() > 0:  # daemonise: re-parent to init, no zombie
        os._exit(0)
    signal.signal(signal.SIGTERM, lambda *_: None)  # cancel stops the engine; we record it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    store = Store(Path(outputs))
    me = os.getpid()
    with store.tx() as con:
        r = con.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if r is None or r["status"] != STARTING:
            return 0  # cancelled before it started
        con.execute("UPDATE jobs SET status = ?, started_at = ?, pid = ?, pgid = ?, host = ?, "
                    "heartbeat = ? WHERE job_id = ?",
                    (RUNNING, _iso(), me, os.getpgrp(), socket.gethostname(), time.time(), job_id))
    current = {"job_id": job_id}
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(sqlite3.Error), store.tx() as con:
                con.execute("UPDATE jobs SET heartbeat = ? WHERE job_id = ? AND pid = ?",
                            (time.time(), current["job_id"], me))

    threading.Thread(target=beat, daemon=True).start()
    if chain > 1:  # import the engine once; every job of the chain is a forked child
        import pna_engine.cli  # noqa: F401
        import pna_engine.jobrunner  # noqa: F401
        import pna_engine.pipeline  # noqa: F401
    done = 0
    while r is not None:
        current["job_id"] = r["job_id"]
        _run_job(store, r, me, forked=chain > 1)
        done += 1
        r = _claim_next(store, me) if done < chain else None
    stop.set()
    dispatch(store)
    return 0


def _job_env(r: sqlite3.Row, results: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_BATCH_", "PNA_MANIFEST", "PNA_REQUEST"))}
    env.update(PNA_REQUEST=r["request"], PNA_RESULTS_URI=str(results), PNA_JOB_ID=r["job_id"],
               PYTHONUNBUFFERED="1")
    return env


def _run_job(store: Store, r: sqlite3.Row, me: int, forked: bool) -> None:
    """Run one claimed (RUNNING, ``pid`` = this supervisor) job and record its outcome."""
    job_id = r["job_id"]
    log_path = store.log_path(job_id)
    results = Path(r["results_uri"])
    env = _job_env(r, results)
    cmd = container_command()
    how = "in a forked worker" if forked else " ".join(cmd)
    _append_log(log_path, f"[pna-local] job {job_id} ({r['place']}) started: {how} -> {results}")
    if forked:
        rc = _fork_job(store, job_id, env, log_path)
    else:
        with open(log_path, "ab") as logf:
            child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, cwd=str(store.outputs))
            # a cancel between the claim and this Popen signalled a group without the engine
            # in it: stop the engine now, or a CANCELLED job would finish and look complete
            if not _still_ours(store, job_id, me):
                child.terminate()
            rc = child.wait()
    st = read_status(results, live=False)  # as the engine left it: mark it failed below
    ok = rc == 0 and st.get("state") == "succeeded"
    reason = None
    if not ok:
        reason = st.get("error") or f"the engine exited with code {rc}"
        if st.get("state") != "failed":
            mark_failed(results, reason)
    with store.tx() as con:
        con.execute("UPDATE jobs SET status = ?, phase = ?, reason = ?, stopped_at = ?, "
                    "exit_code = ? WHERE job_id = ? AND status = ? AND pid = ?",
                    (SUCCEEDED if ok else FAILED, st.get("phase"), reason, _iso(), rc, job_id,
                     RUNNING, me))
        final = con.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]
    _append_log(log_path, f"[pna-local] job {job_id} {final} (exit code {rc})"
                          + (f": {reason}" if reason and final == FAILED else ""))


def _still_ours(store: Store, job_id: str, me: int) -> bool:
    """Is ``job_id`` still RUNNING under this supervisor (not cancelled or failed meanwhile)?"""
    with store.connect() as con:
        row = con.execute("SELECT status, pid FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return row is not None and row["status"] == RUNNING and row["pid"] == me


def _fork_job(store: Store, job_id: str, env: dict[str, str], log_path: Path) -> int:
    """Run the container entry point for one job in a forked child (its own process group,
    so a cancel stops only it); return its exit code."""
    pid = os.fork()
    if pid == 0:  # the child: become the job
        code = 1
        try:
            os.setpgid(0, 0)
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.environ.clear()
            os.environ.update(env)
            os.chdir(store.outputs)
            from pna_engine import jobrunner

            code = int(jobrunner.main(env) or 0)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    with store.tx() as con:  # a cancel that came first finds no group: stop the child now
        row = con.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None or row[0] != RUNNING:
            kill_group(pid, grace=2.0)
        else:
            con.execute("UPDATE jobs SET pgid = ? WHERE job_id = ?", (pid, job_id))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _claim_next(store: Store, me: int) -> sqlite3.Row | None:
    """Claim the oldest queued chain job if a slot is free under its concurrency."""
    with store.tx() as con:
        busy = con.execute("SELECT count(*) FROM jobs WHERE status IN (?, ?)",
                           (STARTING, RUNNING)).fetchone()[0]
        r = con.execute("SELECT * FROM jobs WHERE status IN (?, ?) AND chain > 1 "
                        "ORDER BY created_at, rowid LIMIT 1", (SUBMITTED, RUNNABLE)).fetchone()
        if r is None or busy >= max(1, r["concurrency"] or 1):
            return None
        con.execute("UPDATE jobs SET status = ?, started_at = ?, pid = ?, pgid = NULL, host = ?, "
                    "heartbeat = ? WHERE job_id = ?",
                    (RUNNING, _iso(), me, socket.gethostname(), time.time(), r["job_id"]))
        return con.execute("SELECT * FROM jobs WHERE job_id = ?", (r["job_id"],)).fetchone()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "supervise":
        sys.exit(supervise(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 6 and sys.argv[1] == "supervise" and sys.argv[4] == "--chain":
        sys.exit(supervise(sys.argv[2], sys.argv[3], int(sys.argv[5])))
    print("usage: python -m pna_helpers.jobs.local supervise JOB_ID OUTPUTS", file=sys.stderr)
    sys.exit(2)
