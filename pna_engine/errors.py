"""Errors a user can cause and fix. The CLI prints them on one line and exits non-zero."""


class InputError(Exception):
    """Bad or missing input: the message names the problem and what to do about it."""


class OfflineError(InputError):
    """A download was needed but ``--offline`` was given (or the network is unreachable)."""
