"""Stopping a run cleanly on SIGTERM and SIGHUP, as on Ctrl-C (SIGINT).

Inside :func:`stop_on_signals`, SIGTERM (Batch terminate, local cancel, ``kill``) and SIGHUP
(the terminal went away) raise :class:`Stopped`, a ``KeyboardInterrupt``: the pipeline's
clean-up runs (``status.json`` says ``failed`` / ``interrupted``, the staging folder is removed)
and the command exits with code 143. Only the first signal interrupts; later ones are ignored
so the clean-up itself is not cut short.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: Exit code of a run stopped by a signal (128 + SIGTERM), whatever the signal.
EXIT_STOPPED = 143
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The run was stopped by a signal; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = SIGNALS) -> Iterator[None]:
    """Raise :class:`Stopped` in the main thread on the first of ``signals`` (no-op outside
    the main thread); restore the previous handlers on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if fired:  # already stopping: let the clean-up finish
            return
        fired.append(signum)
        raise Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
