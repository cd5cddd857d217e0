"""Errors meant for people, and the process exit codes they map to.

Every error canary raises on bad input is a `CanaryError`: its message is one line that says
what is wrong, where, and what to do. The CLI prints it and exits with `exit_code`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Stable process exit codes (documented in `canary --help`)."""

    OK = 0
    REGRESSION = 1  # `compare`: a regression was found; `run`: some probes failed to send
    INCONCLUSIVE = 2  # `compare`: the data cannot rule out a regression
    USAGE = 3  # bad arguments or config
    DATA = 4  # database missing, unreachable, wrong schema, or bad stored data
    ENDPOINT = 5  # every endpoint in the round was unreachable
    INTERNAL = 70  # an unexpected exception: a canary bug (EX_SOFTWARE), never a verdict
    INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT)
    BROKEN_PIPE = 141  # stdout was closed early (`canary runs | head`): 128 + SIGPIPE


class CanaryError(Exception):
    """A user-facing error: one line, what is wrong and what to do."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(CanaryError):
    """A config or suite file is invalid."""

    exit_code = ExitCode.USAGE


class StoreError(CanaryError):
    """The database is missing, unreachable, at the wrong schema revision, or inconsistent."""

    exit_code = ExitCode.DATA


class NotFoundError(CanaryError):
    """A named thing (result, run, suite, endpoint) does not exist."""

    exit_code = ExitCode.DATA
