"""Errors a user can cause and fix. The CLI prints them on one line and exits non-zero."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import NoReturn


class InputError(Exception):
    """Bad or missing input: the message names the problem and what to do about it."""


class OfflineError(InputError):
    """A download was needed but ``--offline`` was given (or the network is unreachable)."""


class StorageError(InputError):
    """A folder or disk the run writes to is unusable: not a folder, read-only, full."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage errors are one line, like every other user error.

    ``pna wait --timeout abc`` prints
    ``pna: error: argument --timeout: invalid float value: 'abc' (see 'pna wait --help')``
    and exits 2, instead of the usage block followed by the error. Sub-command parsers made by
    ``add_subparsers`` are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``<program>: error: <message> (see '<command> --help')`` and exit 2.

        Parameters
        ----------
        message : str
            What argparse found wrong.
        """
        root = self.prog.split()[0]
        self.exit(2, f"{root}: error: {message} (see '{self.prog} --help')\n")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} TB"  # pragma: no cover


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def storage_error(exc: OSError, what: str = "", *, written: int | None = None,
                  folder: str | os.PathLike[str] | None = None) -> StorageError:
    """One line for an ``OSError`` raised while writing: what failed, why, and what to do.

    Parameters
    ----------
    exc
        The error (its ``filename`` names the path when the OS gave one).
    what
        What was being written (``"--output /x"``); default: the error's file name.
    written
        Bytes the run had written when the disk filled (``ENOSPC``), if known.
    folder
        The folder being written (its disk's free space is reported on ``ENOSPC``).
    """
    name = exc.filename if exc.filename is not None else ""
    where = what or (str(name) if name else "a file")
    why = exc.strerror or str(exc) or type(exc).__name__
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        base = folder if folder is not None else (name or None)
        free = ""
        if base is not None:
            with contextlib.suppress(OSError):
                free = _size(shutil.disk_usage(_existing_ancestor(Path(str(base)))).free)
        need = f"it needed more than the {_size(written)} written" if written else ""
        room = f"{free} free there now" if free else ""
        detail = ", ".join(x for x in (need, room) if x)
        return StorageError(f"the disk is full ({why}) writing {where}"
                            + (f": {detail}" if detail else "")
                            + "; free some space or choose another output folder, then run again")
    if code == errno.EROFS:
        return StorageError(f"cannot write {where}: the file system is read-only; choose a "
                            "writable output folder")
    if code in (errno.EACCES, errno.EPERM):
        return StorageError(f"cannot write {where}: permission denied; choose a folder you can "
                            "write to, or fix its permissions")
    if code == errno.ENOTDIR:
        parent = next((p for p in Path(str(name)).parents if p.is_file()), None) if name else None
        detail = f"{parent} is a file, not a folder" if parent else why
        return StorageError(f"cannot write {where}: {detail}; choose a folder path")
    if code in (errno.EEXIST, errno.EISDIR) and name and Path(str(name)).is_file():
        return StorageError(f"cannot write {where}: {name} is a file, not a folder; choose a "
                            "folder path")
    return StorageError(f"cannot write {where}: {why}")


def check_writable_folder(path: str | os.PathLike[str], option: str) -> Path:
    """Create ``path`` (and its parents) if needed and make sure files can be written in it.

    Raises
    ------
    StorageError
        ``path`` or one of its parents is a file, or the folder cannot be created or written
        (read-only file system, permissions, full disk); the message names ``option``.
    """
    import tempfile

    p = Path(path).expanduser()
    label = f"{option} {p}" if option else str(p)
    if p.exists() and not p.is_dir():
        raise StorageError(f"{label} is a file, not a folder; give a folder path (it is created "
                           "if missing)")
    base = _existing_ancestor(p)
    if base.exists() and not base.is_dir():
        raise StorageError(f"{label}: {base} is a file, not a folder; give a folder path")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".pna-write-test-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise storage_error(exc, label) from exc
    return p
