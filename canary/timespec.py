"""Points in time on the command line: `24h`, `7d`, `90m` ago, or an ISO 8601 timestamp."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from canary.errors import ConfigError

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`90m`, `24h`, `7d`, `2w` → a timedelta."""
    match = _AGO.match(text.strip())
    if not match:
        raise ConfigError(f"{text!r} is not a duration; write e.g. 30m, 24h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """A duration means that long before ``now``; otherwise an ISO 8601 time (UTC if naive)."""
    now = now or datetime.now(UTC)
    if _AGO.match(text.strip()):
        return now - parse_duration(text)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{text!r} is neither a duration (24h) nor an ISO time (2026-11-24T08:00:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
