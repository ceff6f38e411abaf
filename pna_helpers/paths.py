"""Where things live: ``PNA_OUTPUTS`` (default: the repository's ``outputs/`` folder, whatever the
working directory - notebooks run from ``notebooks/``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def outputs_dir() -> Path:
    """The outputs folder: job store, job logs, results, reports."""
    env = os.environ.get("PNA_OUTPUTS")
    p = Path(env).expanduser() if env else REPO_ROOT / "outputs"
    p.mkdir(parents=True, exist_ok=True)
    return p.resolve()
