"""The run status file: ``status.json`` in the output folder, kept up to date while a run goes.

This module is its only writer. The engine (:class:`StatusFile`, one per run), the job
container (:mod:`pna_engine.jobrunner`: fetching inputs, uploading results) and the local
backend (:func:`mark_failed` when a job is stopped or its process dies) all go through it.
The job layer (local or AWS) reads it (:func:`read_status`) to show the analysis phase next to
the Batch state::

    {"state": "running", "phase": "connectivity", "phase_index": 5, "phases": [...],
     "started_at": "...", "updated_at": "...", "error": null, "engine_version": "0.1.0",
     "writer": {"host": "h", "pid": 1234, "start": 98765}, "heartbeat_at": "...",
     "heartbeat_every_s": 10}

``state`` is ``running``, ``succeeded`` or ``failed``; ``phase_index`` is 0-based in ``phases``
(None for a phase of the container, such as ``fetch-inputs``). Every write is atomic.

While a run goes, its writer (host, process id and the process's start time) is recorded and
a heartbeat rewrites the file every :data:`HEARTBEAT_S` seconds. A reader calls
:func:`read_status` (or :func:`effective`): a ``running`` file whose writer is gone - its process
has ended on this host, or its heartbeat is older than :data:`STALE_S` seen from another host -
reads as ``failed`` with an error starting with ``interrupted``, never as ``running`` forever
(SIGKILL, a crash, a lost machine).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pna_engine import PHASES, __version__
from pna_engine.atomic import write_json

STATUS_FILE = "status.json"
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
#: Seconds between two heartbeats of a running writer.
HEARTBEAT_S = 10.0
#: A running status whose heartbeat is older than this (seen from another host) is dead.
STALE_S = 60.0
INTERRUPTED = "interrupted"


def now() -> str:
    """The current UTC time as ISO 8601 text, to the second (the file's time format)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _proc_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None: with
    the pid it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):  # a zombie has ended
            return -1
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def writer_info() -> dict[str, Any]:
    """This process as the writer of a status file: host, pid and process start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _proc_start(pid)}


def _fresh() -> dict[str, Any]:
    t = now()
    return {"state": RUNNING, "phase": None, "phase_index": None, "phases": list(PHASES),
            "started_at": t, "updated_at": t, "error": None, "engine_version": __version__,
            "writer": writer_info(), "heartbeat_at": t, "heartbeat_every_s": HEARTBEAT_S}


# --------------------------------------------------------------------------- writers
class StatusFile:
    """``status.json`` of one run, written atomically at every change.

    :meth:`start_heartbeat` rewrites it every :data:`HEARTBEAT_S` seconds until the run ends.

    Parameters
    ----------
    folder
        The output folder.
    on_change
        Called with the file's path after each write (the container mirrors it to S3).
    resume
        Continue the status already in ``folder`` (its start time and phase) instead of
        starting a new one.
    """

    def __init__(self, folder: str | Path, on_change: Callable[[Path], None] | None = None,
                 *, resume: bool = False):
        self.path = Path(folder) / STATUS_FILE
        self.on_change = on_change
        self._lock = threading.Lock()
        self._beat: threading.Event | None = None
        self._beat_thread: threading.Thread | None = None
        self.data: dict[str, Any] = _fresh()
        if resume:
            old = read_status(folder, live=False)
            self.data.update({k: old[k] for k in ("started_at", "phase", "phase_index")
                              if old.get(k) is not None})

    def write(self) -> None:
        """Write the file now (``updated_at`` = now) and call ``on_change``."""
        with self._lock:
            self.data["updated_at"] = self.data["heartbeat_at"] = now()
            write_json(self.path, self.data)
            if self.on_change is not None:
                self.on_change(self.path)

    def start_heartbeat(self, every: float = HEARTBEAT_S) -> None:
        """Rewrite the file every ``every`` seconds from a daemon thread until the state is
        final. The thread holds no lock a forked worker could need (``fork_safe``)."""
        if self._beat is not None:
            return
        stop = self._beat = threading.Event()

        def beat() -> None:
            while not stop.wait(every):
                if self.data["state"] != RUNNING:
                    return
                with contextlib.suppress(Exception):  # a failed beat must not end the run
                    self.write()

        t = threading.Thread(target=beat, name="pna-status-heartbeat", daemon=True)
        t.fork_safe = True  # type: ignore[attr-defined]  # see export._can_fork
        t.start()
        self._beat_thread = t

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat thread (if any) and wait for a beat in progress; the file is not
        written."""
        if self._beat is not None:
            self._beat.set()
            self._beat = None
        t, self._beat_thread = self._beat_thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)

    def phase(self, name: str) -> None:
        """A phase (of :data:`~pna_engine.PHASES`, or of the container) starts."""
        self.data["phase"] = name
        self.data["phase_index"] = PHASES.index(name) if name in PHASES else None
        self.write()

    def succeeded(self) -> None:
        """The run is complete (written after the last result file)."""
        self.stop_heartbeat()
        self.data["state"] = SUCCEEDED
        self.write()

    def failed(self, error: str, phase: str | None = None) -> None:
        """The run failed with ``error`` (in ``phase``, if given)."""
        self.stop_heartbeat()
        self.data["state"] = FAILED
        self.data["error"] = error
        if phase is not None:
            self.data["phase"] = phase
            self.data["phase_index"] = PHASES.index(phase) if phase in PHASES else None
        self.write()


def mark_failed(folder: str | Path, error: str, *, replace_error: bool = False) -> bool:
    """Make sure a stopped run's folder never looks complete: a missing or ``running`` status
    becomes ``failed`` with ``error``. Best effort (a full disk is not a second error).

    Parameters
    ----------
    folder
        The run's output folder.
    error
        Why the run failed (one line).
    replace_error
        Also give a ``failed`` status this ``error`` (a cancel's reason instead of the
        stopped engine's own "interrupted"). A ``succeeded`` folder is never changed.

    Returns
    -------
    bool
        Whether the file was written.
    """
    folder = Path(folder)
    st = read_status(folder, live=False)
    if st and st.get("state") != RUNNING and not (
            replace_error and st.get("state") == FAILED and st.get("error") != error):
        return False
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / STATUS_FILE, {**(st or _fresh()), "state": FAILED, "error": error,
                                          "updated_at": now()})
        return True
    return False


# --------------------------------------------------------------------------- readers
def writer_alive(data: dict[str, Any], now_t: float | None = None) -> bool | None:
    """Is the writer of a ``running`` status still there? None when the file does not say
    (written by an older PNA) or the state is final."""
    if data.get("state") != RUNNING:
        return None
    w = data.get("writer")
    if not isinstance(w, dict) or not w.get("pid"):
        return None
    if w.get("host") == socket.gethostname():
        start = _proc_start(int(w["pid"]))
        if start is None:  # no /proc: ask the kernel
            try:
                os.kill(int(w["pid"]), 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return start != -1 and (w.get("start") is None or start == w.get("start"))
    try:  # another host: only a file with a heartbeat can be judged
        beat = _dt.datetime.fromisoformat(data["heartbeat_at"])
    except (KeyError, TypeError, ValueError):
        return None
    t = now_t if now_t is not None else _dt.datetime.now(_dt.UTC).timestamp()
    every = float(data.get("heartbeat_every_s") or HEARTBEAT_S)
    return t - beat.timestamp() <= max(STALE_S, 3 * every)


def effective(data: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The status as a reader should see it: a ``running`` file whose writer is gone becomes
    ``failed`` with an ``interrupted: ...`` error (the file itself is not changed)."""
    if writer_alive(data, now) is not False:
        return data
    w = data.get("writer") or {}
    why = (f"{INTERRUPTED}: the run's process (pid {w.get('pid')} on {w.get('host')}) stopped "
           f"in phase {data.get('phase') or 'start-up'} without finishing (killed, crashed or "
           "its machine was lost); run it again")
    return {**data, "state": FAILED, "error": why, "writer_dead": True}


def read_status(folder: str | Path, *, live: bool = True) -> dict[str, Any]:
    """``status.json`` of ``folder``; ``{}`` when there is none or it is unreadable.

    Parameters
    ----------
    folder
        The run's output folder.
    live
        As a reader should see it (see :func:`effective`: a dead writer's ``running`` reads
        as ``failed``); False gives the file as written.
    """
    try:
        data = json.loads((Path(folder) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return effective(data) if live else data
