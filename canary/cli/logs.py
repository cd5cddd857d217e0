"""The CLI's one log handler: stderr, secrets scrubbed (every command, and the daemon's level)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from canary.errors import CanaryError


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever `sys.stderr` is at emit time (a test runner swaps it per command)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_LOG_HANDLER: logging.Handler | None = None


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """The CLI's one log handler: stderr, secrets scrubbed, WARNING unless `level` says more.

    The daemon passes its `--log-level` (and format); other commands leave the root logger's
    level alone.

    Library warnings (httpx, sqlalchemy, alembic) would otherwise reach the terminal through
    logging's last-resort handler, unscrubbed; an API key they quote must not.
    """
    global _LOG_HANDLER
    from canary.sanitize import SecretScrubFilter

    root = logging.getLogger()
    if _LOG_HANDLER is None:
        _LOG_HANDLER = _StderrHandler()
        _LOG_HANDLER.addFilter(SecretScrubFilter())
    if _LOG_HANDLER not in root.handlers:
        root.addHandler(_LOG_HANDLER)
    _LOG_HANDLER.setFormatter(logging.Formatter(fmt or "%(levelname)s %(name)s: %(message)s"))
    if level is None:
        _LOG_HANDLER.setLevel(logging.WARNING)
        return
    resolved = logging.getLevelName(level.upper())
    if not isinstance(resolved, int):
        raise CanaryError(f"--log-level {level!r}: use debug, info, warning or error")
    _LOG_HANDLER.setLevel(resolved)
    root.setLevel(resolved)
