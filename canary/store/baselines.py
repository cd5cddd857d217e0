"""Stored baselines: named aggregates of a healthy period, kept as JSON payloads.

The store keeps the payload as given; what it means (an `Aggregate`) is `canary.compare`'s
business, so a baseline's format can change without a query here changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from canary.store.models import BaselineRow, utcnow
from canary.store.repository import Store


@dataclass(frozen=True)
class StoredBaseline:
    """One baselines row, payload still JSON."""

    name: str
    created_at: datetime
    selector: str
    payload: dict[str, Any]
    note: str | None


class BaselineExists(Exception):
    """A baseline of that name is stored and the caller did not ask to replace it."""


def insert_baseline(
    store: Store,
    name: str,
    selector: str,
    payload: dict[str, Any],
    *,
    note: str | None = None,
    replace: bool = False,
) -> datetime:
    """Store a baseline and return its creation time; ``replace`` swaps one of the same name
    in the same transaction, so readers never see the name missing."""
    created = utcnow()
    try:
        with store.engine.begin() as conn:
            if replace:
                conn.execute(delete(BaselineRow).where(BaselineRow.name == name))
            conn.execute(
                insert(BaselineRow).values(
                    name=name, created_at=created, selector=selector, payload=payload, note=note
                )
            )
    except IntegrityError:
        raise BaselineExists(name) from None
    return created


def get_baseline(store: Store, name: str) -> StoredBaseline | None:
    """The baseline named ``name``, or None."""
    with store.engine.connect() as conn:
        row = conn.execute(_COLUMNS.where(BaselineRow.name == name)).first()
    return None if row is None else _stored(row)


def all_baselines(store: Store) -> list[StoredBaseline]:
    """Every stored baseline, oldest first (payloads included: for listing them in full)."""
    with store.engine.connect() as conn:
        rows = conn.execute(_COLUMNS.order_by(BaselineRow.created_at)).all()
    return [_stored(r) for r in rows]


def baseline_names(store: Store) -> list[str]:
    """Names of the stored baselines, oldest first, without reading their payloads."""
    with store.engine.connect() as conn:
        return list(
            conn.execute(select(BaselineRow.name).order_by(BaselineRow.created_at)).scalars()
        )


_COLUMNS = select(
    BaselineRow.name,
    BaselineRow.created_at,
    BaselineRow.selector,
    BaselineRow.payload,
    BaselineRow.note,
)


def _stored(row: Any) -> StoredBaseline:
    return StoredBaseline(row.name, row.created_at, row.selector, dict(row.payload), row.note)
