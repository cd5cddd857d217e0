"""The notification outbox: alert state and the notifications it causes commit together.

The alert engine enqueues notifications (`canary.store.outbox`) inside the transaction that
changes alert state, so a crash can lose neither. `deliver_due` then sends what is due, from any
number of daemons on one database: each delivery is claimed with a lease (`locked_until`)
before it is sent, outside any transaction, and settled afterwards. Delivery is at least
once: a daemon that dies after sending but before settling leaves the lease to run out and the
delivery to be sent again, so receivers should drop repeats by ``notification_id``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from canary.alerts.sinks.base import DeliveryError, Sink
from canary.alerts.sinks.text import one_line
from canary.errors import CanaryError

if TYPE_CHECKING:
    from canary.store import Store
    from canary.store.outbox import Claim

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
    from canary.store.models import utcnow
    from canary.store.outbox import claim_next

    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    unconfigured = _warn_unconfigured(store, sinks)
    leases = {name: sink.lease_s for name, sink in sinks.items()}
    delivered = retried = expired = 0
    errors: list[str] = []
    for _ in range(limit):
        claim = claim_next(store, leases, clock())
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
            _settle(store, claim, owner, delivered_at=clock())
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


def _send(sink: Sink[Any], claim: Claim) -> str | None:
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


def _settle(
    store: Store,
    claim: Claim,
    owner: str,
    *,
    delivered_at: datetime | None = None,
    next_attempt_at: datetime | None = None,
    last_error: str | None = None,
) -> None:
    """Record an attempt's outcome and release the lease, if this daemon still holds it."""
    from canary.store.outbox import settle

    held = settle(
        store,
        claim,
        delivered_at=delivered_at,
        next_attempt_at=next_attempt_at,
        last_error=last_error,
    )
    if not held:
        logger.warning(
            "%s: lost the lease on delivery %d (sink %s) while sending; it may be sent twice",
            owner,
            claim.id,
            claim.sink,
        )


def _expire(store: Store, claim: Claim, attempts: int, error: str, owner: str) -> None:
    from canary.store.outbox import expire

    expire(store, claim, attempts, error)
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
    from canary.store.outbox import pending_elsewhere

    counts = pending_elsewhere(store, list(sinks))
    for name, count in counts.items():
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
    return sum(counts.values())
