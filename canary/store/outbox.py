"""The notification outbox's rows: notifications, one delivery per sink, leases and outcomes.

`enqueue_notification` runs on the caller's transaction, so a notification commits with the
alert state change that caused it. Deliveries are claimed with a lease (`locked_until`) in a
short write transaction of their own and settled in another; the sending in between (in
`canary.alerts.outbox`) holds no transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, or_, select, update

from canary.store.models import DeliveryRow, NotificationRow, utcnow

if TYPE_CHECKING:
    from canary.store.repository import Store


@dataclass(frozen=True)
class Claim:
    """A delivery leased to this daemon until ``token``."""

    id: int
    sink: str
    notification_id: int
    attempts: int
    created_at: datetime
    token: datetime
    """The `locked_until` this claim set: settling checks it, so a lost lease is noticed."""
    payload: dict[str, Any]


def enqueue_notification(
    conn: Connection,
    payload: Mapping[str, Any],
    sink_names: Sequence[str],
    *,
    now: datetime | None = None,
) -> int:
    """Store a notification and one pending delivery per sink; returns the notification id.

    Runs on the caller's connection and transaction, so the notification commits (or rolls
    back) with the alert state change that caused it. The stored payload gets its
    ``notification_id``, which receivers can use to drop repeated deliveries.
    """
    for key in ("group_key", "status"):
        if not payload.get(key):
            raise ValueError(f"notification payload lacks {key!r}")
    created = now or utcnow()
    notification_id: int = conn.execute(
        insert(NotificationRow)
        .values(
            created_at=created,
            group_key=str(payload["group_key"]),
            status=str(payload["status"]),
            payload={**payload, "notification_id": None},
        )
        .returning(NotificationRow.id)
    ).scalar_one()
    conn.execute(
        update(NotificationRow)
        .where(NotificationRow.id == notification_id)
        .values(payload={**payload, "notification_id": notification_id})
    )
    names = list(dict.fromkeys(sink_names))
    if names:
        conn.execute(
            insert(DeliveryRow),
            [
                {
                    "notification_id": notification_id,
                    "sink": name,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": created,
                    "created_at": created,
                }
                for name in names
            ],
        )
    return notification_id


def pending_deliveries(store: Store) -> int:
    """Deliveries not yet delivered nor expired (for `doctor` and the daemon's metrics)."""
    with store.engine.connect() as conn:
        count = conn.execute(
            select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "pending")
        ).scalar_one()
    return int(count)


def claim_next(store: Store, leases: Mapping[str, float], now: datetime) -> Claim | None:
    """Lease the next due delivery to one of the sinks in ``leases`` (name → lease seconds),
    or None when nothing is due.

    On PostgreSQL the candidate row is locked with SKIP LOCKED, so racing daemons take
    different rows instead of queueing on one; SQLite serialises writers (BEGIN IMMEDIATE).
    The UPDATE repeats the lease condition, so the claim is exclusive on either database.
    """
    if not leases:
        return None
    unleased = or_(DeliveryRow.locked_until.is_(None), DeliveryRow.locked_until < now)
    with store.write_transaction() as conn:
        candidate = (
            select(DeliveryRow)
            .where(
                DeliveryRow.status == "pending",
                DeliveryRow.next_attempt_at <= now,
                DeliveryRow.sink.in_(list(leases)),
                unleased,
            )
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
            .limit(1)
        )
        if conn.dialect.name == "postgresql":
            candidate = candidate.with_for_update(skip_locked=True)
        row = conn.execute(candidate).first()
        if row is None:
            return None
        token = now + timedelta(seconds=leases[row.sink])
        claimed = conn.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == row.id, DeliveryRow.status == "pending", unleased)
            .values(locked_until=token)
        ).rowcount
        if claimed != 1:
            return None
        payload = conn.execute(
            select(NotificationRow.payload).where(NotificationRow.id == row.notification_id)
        ).scalar_one()
    return Claim(
        row.id, row.sink, row.notification_id, row.attempts, row.created_at, token, payload
    )


def settle(
    store: Store,
    claim: Claim,
    *,
    next_attempt_at: datetime | None = None,
    last_error: str | None = None,
    delivered_at: datetime | None = None,
) -> bool:
    """Record an attempt's outcome and release the lease: delivered when ``delivered_at`` is
    given, else due again at ``next_attempt_at``. False when this daemon lost the lease."""
    values: dict[str, Any] = {}
    if delivered_at is not None:
        values.update(status="delivered", delivered_at=delivered_at)
    else:
        values.update(next_attempt_at=next_attempt_at, last_error=last_error)
    with store.write_transaction() as conn:
        done = conn.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == claim.id, DeliveryRow.locked_until == claim.token)
            .values(attempts=claim.attempts + 1, locked_until=None, **values)
        ).rowcount
    return bool(done == 1)


def expire(store: Store, claim: Claim, attempts: int, error: str) -> None:
    """Give up on a delivery, if this daemon still holds its lease."""
    with store.write_transaction() as conn:
        conn.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == claim.id, DeliveryRow.locked_until == claim.token)
            .values(status="expired", attempts=attempts, locked_until=None, last_error=error)
        )


def pending_elsewhere(store: Store, sink_names: Sequence[str]) -> dict[str, int]:
    """Pending deliveries per sink not in ``sink_names``."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(DeliveryRow.sink, func.count())
            .where(DeliveryRow.status == "pending", DeliveryRow.sink.not_in(list(sink_names)))
            .group_by(DeliveryRow.sink)
        ).all()
    return {str(name): int(count) for name, count in rows}
