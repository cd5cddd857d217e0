"""Recorded changes: what was deployed or reconfigured, where, and when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from canary.errors import ConfigError, NotFoundError
from canary.store.models import ChangeRow
from canary.store.repository import Store

CHANGE_KINDS = ("deploy", "config", "lb", "model")


@dataclass(frozen=True)
class Change:
    change_id: str
    kind: str
    labels: dict[str, str]
    at: datetime
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.change_id,
            "kind": self.kind,
            "labels": self.labels,
            "at": self.at.isoformat(),
            "note": self.note,
        }


def record_change(
    store: Store,
    change_id: str,
    kind: str,
    labels: Mapping[str, str],
    at: datetime,
    note: str = "",
) -> Change:
    """Store a change; an id is recorded once (a CD retry with the same id is an error)."""
    if kind not in CHANGE_KINDS:
        raise ConfigError(f"change kind {kind!r} is unknown; use one of {', '.join(CHANGE_KINDS)}")
    if not change_id.strip():
        raise ConfigError("a change needs an id, e.g. --id deploy-2026-11-24-1")
    try:
        with store.engine.begin() as conn:
            conn.execute(
                insert(ChangeRow).values(
                    change_id=change_id,
                    kind=kind,
                    labels=dict(labels),
                    at=at,
                    note=note,
                    recorded_at=datetime.now(at.tzinfo),
                )
            )
    except IntegrityError:
        raise ConfigError(
            f"change {change_id!r} is already recorded; see `canary change list`"
        ) from None
    return Change(change_id, kind, dict(labels), at, note)


def get_change(store: Store, change_id: str) -> Change:
    with store.engine.connect() as conn:
        row = conn.execute(_COLUMNS.where(ChangeRow.change_id == change_id)).first()
    if row is None:
        raise NotFoundError(f"no change {change_id!r}; record it with `canary change record`")
    return _change(row)


def list_changes(
    store: Store, since: datetime | None = None, until: datetime | None = None
) -> list[Change]:
    """Changes in [since, until), oldest first."""
    query = _COLUMNS.order_by(ChangeRow.at)
    if since is not None:
        query = query.where(ChangeRow.at >= since)
    if until is not None:
        query = query.where(ChangeRow.at < until)
    with store.engine.connect() as conn:
        return [_change(r) for r in conn.execute(query)]


_COLUMNS = select(
    ChangeRow.change_id, ChangeRow.kind, ChangeRow.labels, ChangeRow.at, ChangeRow.note
)


def _change(row: Any) -> Change:
    return Change(row.change_id, row.kind, dict(row.labels), row.at, row.note)
