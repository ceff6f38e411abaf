"""Where things live: ``PNA_OUTPUTS`` (default: the repository's ``outputs/`` folder, whatever the
working directory - notebooks run from ``notebooks/``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def outputs_label(path: str | Path | None = None) -> str:
    """How messages name the outputs folder: ``PNA_OUTPUTS=/x`` when the variable set it.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        The folder to name (default: ``$PNA_OUTPUTS``, else the repository's ``outputs/``).

    Returns
    -------
    str
        ``PNA_OUTPUTS=<path>`` when ``PNA_OUTPUTS`` is set, else ``the outputs folder <path>``.
    """
    env = os.environ.get("PNA_OUTPUTS")
    p = path if path is not None else (env or REPO_ROOT / "outputs")
    return f"PNA_OUTPUTS={p}" if env else f"the outputs folder {p}"


def outputs_dir() -> Path:
    """The outputs folder: job store, job logs, results, reports.

    Created (with its parents) if missing.

    Returns
    -------
    pathlib.Path
        ``$PNA_OUTPUTS`` (``~`` expanded) or the repository's ``outputs/``, resolved.

    Raises
    ------
    StorageError
        ``PNA_OUTPUTS`` is a file, lies under a file, or cannot be created.
    """
    from pna_engine.errors import StorageError, storage_error

    env = os.environ.get("PNA_OUTPUTS")
    p = Path(env).expanduser() if env else REPO_ROOT / "outputs"
    if p.exists() and not p.is_dir():
        raise StorageError(f"{outputs_label(p)} is a file, not a folder: point PNA_OUTPUTS at a "
                           "folder (it is created if missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, outputs_label(p)) from exc
    return p.resolve()


def slugify(text: str, max_len: int = 100) -> str:
    """A name safe for files, Batch job names and S3 keys (``Helsinki demo`` -> ``helsinki-demo``).

    Parameters
    ----------
    text
        Any name.
    max_len
        At most this many characters.

    Returns
    -------
    str
        Lower-case letters, digits and ``-``; ``place`` if nothing is left.
    """
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return s[:max_len].rstrip("-") or "place"


def is_utf8(text: str) -> bool:
    """Can ``text`` be written as UTF-8? Not when it holds the ``\\udcXX`` escapes Python
    gives the bytes of a name in another encoding (a Latin-1 file name or terminal).

    Parameters
    ----------
    text : str
        A name from outside (argument, file name, places-file cell).

    Returns
    -------
    bool
    """
    try:
        str(text).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
