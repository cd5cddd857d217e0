"""What the daemons left in the database, read for `canary doctor` and the `/metrics` gauges.

Read from the shared database rather than from a daemon, so every daemon of a fleet (those that
died included) is seen, and each daemon exports the same gauges. Each read is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select

from canary.store.models import AlertRow, DeliveryRow, MonitorRow, ScheduleSlotRow
from canary.store.repository import Store


@dataclass(frozen=True)
class ScheduleHistory:
    """One schedule's slots, as far as doctor asks."""

    last_done: datetime | None
    """When its latest `done` slot finished."""
    latest_status: str | None
    """The status of its newest slot (by slot time); None when it has none."""
    latest_error: str | None


@dataclass(frozen=True)
class FailedSlot:
    schedule: str
    slot_at: datetime
    error: str | None


@dataclass(frozen=True)
class SinkBacklog:
    """Pending deliveries of one sink."""

    sink: str
    pending: int
    oldest: datetime
    """When the oldest pending delivery was created."""


@dataclass(frozen=True)
class DaemonState:
    """Slots, outbox and alerts in one snapshot."""

    schedules: dict[str, ScheduleHistory] = field(default_factory=dict)
    failed: list[FailedSlot] = field(default_factory=list)
    """Failed slots since the asked time, oldest first."""
    orphans: int = 0
    """Slots still `running` whose lease is past."""
    oldest_orphan_lease: datetime | None = None
    outbox: list[SinkBacklog] = field(default_factory=list)
    """By sink name."""
    oldest_pending_error: str | None = None
    """The last error of the oldest pending delivery that has one."""
    open_alerts: dict[str, int] = field(default_factory=dict)
    """Count by status."""


@dataclass(frozen=True)
class MonitorState:
    metric: str
    labels: dict[str, str] | None
    state: Any
    """The monitor's stored JSON state (``score``, ``last_k``, ``last_n``…); not checked."""


@dataclass(frozen=True)
class OpenAlert:
    status: str
    metric: str
    labels: dict[str, str] | None


@dataclass(frozen=True)
class GaugeReading:
    """What the `/metrics` gauges show, read in one transaction."""

    monitors: list[MonitorState]
    open_alerts: list[OpenAlert]
    outbox_pending: int


def read_daemon_state(
    store: Store,
    *,
    schedules: Sequence[str],
    failed_since: datetime,
    now: datetime,
    open_statuses: Sequence[str],
) -> DaemonState:
    """The slots of `schedules`, failed slots since `failed_since`, orphans at `now`, the
    outbox backlog and the alerts in `open_statuses`."""
    with store.engine.begin() as conn:
        histories = {name: _history(conn, name) for name in schedules}
        failed = [
            FailedSlot(row.schedule, row.slot_at, row.error)
            for row in conn.execute(
                select(ScheduleSlotRow.schedule, ScheduleSlotRow.slot_at, ScheduleSlotRow.error)
                .where(ScheduleSlotRow.status == "failed", ScheduleSlotRow.slot_at >= failed_since)
                .order_by(ScheduleSlotRow.slot_at)
            )
        ]
        orphans, oldest_lease = conn.execute(
            select(func.count(), func.min(ScheduleSlotRow.lease_until)).where(
                ScheduleSlotRow.status == "running", ScheduleSlotRow.lease_until < now
            )
        ).one()
        outbox = [
            SinkBacklog(sink, int(count), oldest)
            for sink, count, oldest in conn.execute(
                select(DeliveryRow.sink, func.count(), func.min(DeliveryRow.created_at))
                .where(DeliveryRow.status == "pending")
                .group_by(DeliveryRow.sink)
                .order_by(DeliveryRow.sink)
            )
        ]
        last_error = conn.execute(
            select(DeliveryRow.last_error)
            .where(DeliveryRow.status == "pending", DeliveryRow.last_error.is_not(None))
            .order_by(DeliveryRow.created_at)
            .limit(1)
        ).scalar()
        alerts = {
            status: int(count)
            for status, count in conn.execute(
                select(AlertRow.status, func.count())
                .where(AlertRow.status.in_(list(open_statuses)))
                .group_by(AlertRow.status)
            )
        }
    return DaemonState(
        histories, failed, int(orphans or 0), oldest_lease, outbox, last_error, alerts
    )


def read_gauges(store: Store, *, open_statuses: Sequence[str]) -> GaugeReading:
    """Every monitor's state, the alerts in `open_statuses` and the pending deliveries."""
    with store.engine.begin() as conn:
        monitors = [
            MonitorState(row.metric, row.labels, row.state)
            for row in conn.execute(select(MonitorRow.labels, MonitorRow.metric, MonitorRow.state))
        ]
        alerts = [
            OpenAlert(row.status, row.metric, row.labels)
            for row in conn.execute(
                select(AlertRow.labels, AlertRow.metric, AlertRow.status).where(
                    AlertRow.status.in_(list(open_statuses))
                )
            )
        ]
        pending = conn.execute(
            select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "pending")
        ).scalar_one()
    return GaugeReading(monitors, alerts, int(pending))


def _history(conn: Connection, name: str) -> ScheduleHistory:
    # Slots are keyed by schedule name (older daemons wrote ``name/load``).
    mine = or_(
        ScheduleSlotRow.schedule == name,
        ScheduleSlotRow.schedule.startswith(f"{name}/", autoescape=True),
    )
    last_done = conn.execute(
        select(func.max(ScheduleSlotRow.finished_at)).where(mine, ScheduleSlotRow.status == "done")
    ).scalar()
    latest = conn.execute(
        select(ScheduleSlotRow.status, ScheduleSlotRow.error)
        .where(mine)
        .order_by(ScheduleSlotRow.slot_at.desc())
        .limit(1)
    ).first()
    if latest is None:
        return ScheduleHistory(last_done, None, None)
    return ScheduleHistory(last_done, latest.status, latest.error)
