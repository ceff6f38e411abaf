"""The run status file: ``status.json`` in the output folder, kept up to date while a run goes.

The job layer (local or AWS) reads it to show the analysis phase next to the Batch state::

    {"state": "running", "phase": "connectivity", "phase_index": 5, "phases": [...],
     "started_at": "...", "updated_at": "...", "error": null, "engine_version": "0.1.0"}

``state`` is ``running``, ``succeeded`` or ``failed``; ``phase_index`` is 0-based in ``phases``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pna_engine import PHASES, __version__
from pna_engine.atomic import write_json

STATUS_FILE = "status.json"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class StatusFile:
    """Writes ``status.json`` atomically at every change; optional ``on_change`` hook
    (the container uses it to mirror the file to S3)."""

    def __init__(self, folder: str | Path, on_change: Callable[[Path], None] | None = None):
        self.path = Path(folder) / STATUS_FILE
        self.on_change = on_change
        self.data: dict[str, Any] = {
            "state": "running",
            "phase": None,
            "phase_index": None,
            "phases": list(PHASES),
            "started_at": _now(),
            "updated_at": _now(),
            "error": None,
            "engine_version": __version__,
        }

    def _write(self) -> None:
        self.data["updated_at"] = _now()
        write_json(self.path, self.data)
        if self.on_change is not None:
            self.on_change(self.path)

    def phase(self, name: str) -> None:
        self.data["phase"] = name
        self.data["phase_index"] = PHASES.index(name) if name in PHASES else None
        self._write()

    def succeeded(self) -> None:
        self.data["state"] = "succeeded"
        self._write()

    def failed(self, error: str) -> None:
        self.data["state"] = "failed"
        self.data["error"] = error
        self._write()
