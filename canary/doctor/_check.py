"""What a doctor check returns, and how a list of them becomes one exit code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Literal

from canary.errors import CanaryError, ExitCode

Status = Literal["ok", "warn", "fail"]
Area = Literal["config", "database", "endpoint", "sink", "daemon"]
"""Which layer a check looked at; a failure's area decides the exit code."""

_AREA_EXIT: dict[str, ExitCode] = {
    "config": ExitCode.USAGE,
    "sink": ExitCode.USAGE,
    "database": ExitCode.DATA,
    "daemon": ExitCode.DATA,
    "endpoint": ExitCode.ENDPOINT,
}
# The earliest broken layer wins: a bad config can name the wrong database, and an unreachable
# database hides the daemon's state, so later failures may only be echoes of the first.
_SEVERITY = (ExitCode.USAGE, ExitCode.DATA, ExitCode.ENDPOINT)


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, how it went, and (unless ok) what to do about it."""

    name: str
    """What was checked, e.g. ``database``, ``endpoint gpu-a``, ``sink ops-slack``."""
    status: Status
    detail: str
    """One line: what was found. Never holds a secret (passwords, keys, sink URLs)."""
    fix: str = ""
    """One line: what to do; empty when the check is ok."""
    area: Area = "config"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def exit_code(checks: Iterable[Check]) -> ExitCode:
    """0 without failures; else 3 (config, sinks), 4 (database, daemon) or 5 (endpoints),
    the earliest layer winning when several fail."""
    failed = {_AREA_EXIT[c.area] for c in checks if c.status == "fail"}
    return next((code for code in _SEVERITY if code in failed), ExitCode.OK)


def failure(name: str, exc: CanaryError, area: Area, fix: str = "") -> Check:
    """A failed check from a canary error, whose message reads "what is wrong; what to do"."""
    message = " ".join(str(exc).split())
    detail, sep, advice = message.rpartition("; ")
    if not sep:
        detail, advice = message, ""
    return Check(name, "fail", detail, advice or fix, area)


def fmt_age(age: timedelta) -> str:
    """``45s``, ``12m``, ``3h 5m``, ``2d 4h``: how long ago, for people."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"
