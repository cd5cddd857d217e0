"""Times read back from aggregates: min()/max() skip the column type on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def aware(value: Any) -> datetime | None:
    """min()/max() of a UTC column come back naive on SQLite (no type processing): as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def aware_at(value: Any) -> datetime:
    """`aware` of a time that is never null (the min of a group's start times)."""
    at = aware(value)
    assert at is not None
    return at
