"""Times read back from aggregates: min()/max() skip the column type on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def aware(value: Any) -> datetime | None:
    """min()/max() of a UTC column come back naive on SQLite (no type processing)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
