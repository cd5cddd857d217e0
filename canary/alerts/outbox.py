"""The notification outbox: alert state and the notifications it causes commit together.

The alert engine calls `enqueue_notification` inside the transaction that changes alert state,
so a crash can lose neither. `deliver_due` then sends what is due, from any number of daemons
on one database: each delivery is claimed with a lease (`locked_until`) before it is sent,
outside any transaction, and settled afterwards. Delivery is at least once: a daemon that dies
after sending but before settling leaves the lease to run out and the delivery to be sent
again, so receivers should drop repeats by ``notification_id``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, or_, select, update

from canary.alerts.sinks.base import DeliveryError, Sink
from canary.alerts.sinks.text import one_line
from canary.errors import CanaryError
from canary.store.models import DeliveryRow, NotificationRow, utcnow

if TYPE_CHECKING:
    from canary.store import Store

logger = logging.getLogger(__name__)

#: Backoff delays are scaled by a factor drawn from this range, so that many deliveries failing
#: together do not retry together. Above 0.5, each delay still exceeds the previous one.
_JITTER = (0.75, 1.0)

_warned_unconfigured: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class DeliveryReport:
    """What one `deliver_due` pass did."""

    delivered: int = 0
    retried: int = 0
    """Failed attempts scheduled for another try."""
    expired: int = 0
    """Deliveries given up after the sink's ``give_up_after_s``."""
    unconfigured: int = 0
    """Pending deliveries to sinks not configured in this daemon, left pending."""
    errors: tuple[str, ...] = ()
    """One line per failed attempt: sink, notification id and what went wrong."""


@dataclass(frozen=True)
class _Claim:
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
    notification_id = conn.execute(
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


def deliver_due(
    store: Store,
    sinks: Mapping[str, Sink[Any]],
    owner: str,
    *,
    now: datetime | None = None,
    limit: int = 50,
) -> DeliveryReport:
    """Send up to `limit` due deliveries; safe to run from several daemons at once.

    `owner` names this daemon in logs. `now` fixes the clock (tests, simulations); by default
    each step reads the current time. Failures never raise: they are retried with exponential
    backoff and jitter, or expired after the sink's ``give_up_after_s``.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    unconfigured = _warn_unconfigured(store, sinks)
    delivered = retried = expired = 0
    errors: list[str] = []
    for _ in range(limit):
        claim = _claim_next(store, sinks, clock())
        if claim is None:
            break
        sink = sinks[claim.sink]
        deadline = claim.created_at + timedelta(seconds=sink.retry.give_up_after_s)
        if clock() > deadline:
            _expire(store, claim, claim.attempts, "not sent before give_up_after_s", owner)
            expired += 1
            continue
        error = _send(sink, claim)
        if error is None:
            _settle(store, claim, owner, status="delivered", delivered_at=clock())
            delivered += 1
            continue
        errors.append(f"{claim.sink} notification {claim.notification_id}: {error}")
        failed_at = clock()
        if failed_at >= deadline:
            _expire(store, claim, claim.attempts + 1, error, owner)
            expired += 1
        else:
            retry_at = min(deadline, failed_at + _backoff(sink, claim.attempts + 1))
            _settle(store, claim, owner, next_attempt_at=retry_at, last_error=error)
            retried += 1
    return DeliveryReport(delivered, retried, expired, unconfigured, tuple(errors))


def pending_deliveries(store: Store) -> int:
    """Deliveries not yet delivered nor expired (for `doctor` and the daemon's metrics)."""
    with store.engine.connect() as conn:
        return count_pending(conn)


def count_pending(conn: Connection) -> int:
    """`pending_deliveries` on a caller's connection (inside its snapshot)."""
    count = conn.execute(
        select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "pending")
    ).scalar_one()
    return int(count)


def _claim_next(store: Store, sinks: Mapping[str, Sink[Any]], now: datetime) -> _Claim | None:
    """Lease the next due delivery to a configured sink, or None when nothing is due.

    On PostgreSQL the candidate row is locked with SKIP LOCKED, so racing daemons take
    different rows instead of queueing on one; SQLite serialises writers (BEGIN IMMEDIATE).
    The UPDATE repeats the lease condition, so the claim is exclusive on either database.
    """
    if not sinks:
        return None
    unleased = or_(DeliveryRow.locked_until.is_(None), DeliveryRow.locked_until < now)
    with store.write_transaction() as conn:
        candidate = (
            select(DeliveryRow)
            .where(
                DeliveryRow.status == "pending",
                DeliveryRow.next_attempt_at <= now,
                DeliveryRow.sink.in_(list(sinks)),
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
        token = now + timedelta(seconds=sinks[row.sink].lease_s)
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
    return _Claim(
        row.id, row.sink, row.notification_id, row.attempts, row.created_at, token, payload
    )


def _send(sink: Sink[Any], claim: _Claim) -> str | None:
    """Send one delivery; the one-line error (no secrets) or None when it was delivered."""
    try:
        sink.send(claim.payload)
    except DeliveryError as exc:
        log = logger.error if exc.permanent else logger.warning
        log("sink %s, notification %d: %s", sink.name, claim.notification_id, exc)
        return str(exc)
    except CanaryError as exc:
        logger.error("sink %s, notification %d: %s", sink.name, claim.notification_id, exc)
        return str(exc)
    except Exception as exc:
        # A sink bug must not stop the daemon or the other sinks: record it, retry later.
        logger.exception("sink %s failed on notification %d", sink.name, claim.notification_id)
        return one_line(f"{type(exc).__name__}: {exc}")
    return None


def _backoff(sink: Sink[Any], attempts: int) -> timedelta:
    """Delay after the `attempts`-th failure: doubling from ``initial_backoff_s``, capped."""
    policy = sink.retry
    delay = min(policy.max_backoff_s, policy.initial_backoff_s * 2 ** min(attempts - 1, 40))
    return timedelta(seconds=delay * random.uniform(*_JITTER))


def _settle(store: Store, claim: _Claim, owner: str, **values: Any) -> None:
    """Record an attempt's outcome and release the lease, if this daemon still holds it."""
    with store.write_transaction() as conn:
        done = conn.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == claim.id, DeliveryRow.locked_until == claim.token)
            .values(attempts=claim.attempts + 1, locked_until=None, **values)
        ).rowcount
    if done != 1:
        logger.warning(
            "%s: lost the lease on delivery %d (sink %s) while sending; it may be sent twice",
            owner,
            claim.id,
            claim.sink,
        )


def _expire(store: Store, claim: _Claim, attempts: int, error: str, owner: str) -> None:
    with store.write_transaction() as conn:
        conn.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == claim.id, DeliveryRow.locked_until == claim.token)
            .values(status="expired", attempts=attempts, locked_until=None, last_error=error)
        )
    logger.error(
        "%s: gave up on notification %d to sink %s after %d attempts since %s: %s",
        owner,
        claim.notification_id,
        claim.sink,
        attempts,
        claim.created_at.isoformat(),
        error,
    )


def _warn_unconfigured(store: Store, sinks: Mapping[str, Sink[Any]]) -> int:
    """Count pending deliveries to sinks this daemon lacks; warn once per sink name.

    They stay pending: the sink may come back in the next config, or another daemon with a
    different config may have it.
    """
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(DeliveryRow.sink, func.count())
            .where(DeliveryRow.status == "pending", DeliveryRow.sink.not_in(list(sinks)))
            .group_by(DeliveryRow.sink)
        ).all()
    for name, count in rows:
        with _warned_lock:
            if name in _warned_unconfigured:
                continue
            _warned_unconfigured.add(name)
        logger.warning(
            "%d pending notification(s) for sink %r, which is not configured; they wait until "
            "a sink of that name is configured",
            count,
            name,
        )
    return sum(int(count) for _, count in rows)
