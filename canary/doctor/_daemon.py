"""Daemon health as the database shows it: schedules running on time, no recently failed
slots, slots not orphaned, the notification outbox draining, and how many alerts are open.

Read from the store rather than from a daemon's HTTP endpoint, so one `canary doctor` sees every
daemon sharing the database, including those that died.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, or_, select

from canary.alerts.model import OPEN_ALERT_STATUSES
from canary.doctor._check import Check, Status, fmt_age
from canary.errors import CanaryError
from canary.sanitize import one_line
from canary.store.models import AlertRow, DeliveryRow, ScheduleSlotRow

if TYPE_CHECKING:
    from canary.daemon.config import DaemonConfig, ScheduleConfig

#: A schedule whose last completed slot is older than this many periods is stale.
STALE_PERIODS = 3
#: Oldest pending delivery: past the first the outbox is backing up, past the second a sink is down.
OUTBOX_WARN = timedelta(minutes=5)
OUTBOX_FAIL = timedelta(hours=1)
#: A failed slot counts as recent for this many periods of its schedule, and at least this long
#: (also the window of schedules the daemon config does not name).
RECENT_PERIODS = 3
RECENT_AT_LEAST = timedelta(hours=1)


def check_daemon_health(
    engine: Engine, daemon: DaemonConfig | None, now: datetime, config_path: Path | None = None
) -> list[Check]:
    """Per-schedule freshness (with a daemon config), orphaned slots, outbox, open alerts."""
    start = f"start one: `canary daemon --config {config_path or 'DAEMON.yaml'}`"
    with engine.connect() as conn:
        checks = [
            _schedule_health(conn, s, now, start) for s in (daemon.schedules if daemon else [])
        ]
        checks.append(_failed_slots(conn, daemon.schedules if daemon else [], now))
        checks += [_orphans(conn, now, start), _outbox(conn, now), _alerts(conn)]
    return checks


def _failed_slots(conn: Connection, schedules: list[ScheduleConfig], now: datetime) -> Check:
    """Slots that failed recently, per schedule: a daemon that keeps probing but cannot finish
    its slots (a scoring bug, a database error) must fail doctor, not pass it quietly."""
    from canary.daemon.timing import period_of

    windows: dict[str, timedelta] = {}
    for schedule in schedules:
        try:
            windows[schedule.name] = max(RECENT_PERIODS * period_of(schedule), RECENT_AT_LEAST)
        except CanaryError:
            windows[schedule.name] = RECENT_AT_LEAST
    oldest = now - max([RECENT_AT_LEAST, *windows.values()])
    rows = conn.execute(
        select(ScheduleSlotRow.schedule, ScheduleSlotRow.slot_at, ScheduleSlotRow.error)
        .where(ScheduleSlotRow.status == "failed", ScheduleSlotRow.slot_at >= oldest)
        .order_by(ScheduleSlotRow.slot_at)
    ).all()
    failed: dict[str, list[str | None]] = {}
    for row in rows:
        name = row.schedule.split("/", 1)[0]  # older daemons keyed slots ``name/load``
        if row.slot_at >= now - windows.get(name, RECENT_AT_LEAST):
            failed.setdefault(name, []).append(row.error)
    if not failed:
        return Check("failed slots", "ok", "none recently", area="daemon")
    parts = []
    for name, errors in sorted(failed.items()):
        window = fmt_age(windows.get(name, RECENT_AT_LEAST))
        latest = one_line(" ".join((errors[-1] or "-").split()))[:160]
        parts.append(f"{one_line(name)}: {len(errors)} failed in the last {window} ({latest})")
    first = one_line(min(failed))
    fix = (
        f"see the daemon's log: the lines 'slot {first}@… failed' hold each traceback; "
        "`canary runs` lists the slots' runs"
    )
    return Check("failed slots", "fail", "; ".join(parts), fix, "daemon")


def _schedule_health(
    conn: Connection, schedule: ScheduleConfig, now: datetime, start: str
) -> Check:
    from canary.daemon.timing import period_of

    name = f"last run {schedule.name}"
    # Slots are keyed by schedule name (older daemons wrote ``name/load``).
    mine = or_(
        ScheduleSlotRow.schedule == schedule.name,
        ScheduleSlotRow.schedule.startswith(f"{schedule.name}/", autoescape=True),
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
    try:
        period = period_of(schedule)
    except CanaryError:
        return Check(name, "warn", "not checked: the timetable is invalid", "", "daemon")
    failed = ""
    if latest is not None and latest.status == "failed":
        failed = f"; latest slot failed: {' '.join((latest.error or '-').split())[:200]}"
    if last_done is None:
        detail = f"no completed slot yet{failed}"
        return Check(name, "warn", detail, f"if no daemon runs it yet, {start}", "daemon")
    age = now - last_done
    if age > STALE_PERIODS * period:
        detail = (
            f"stale: last completed {fmt_age(age)} ago, over {STALE_PERIODS} periods "
            f"of {fmt_age(period)}{failed}"
        )
        fix = f"is a daemon running? check its log, or {start}"
        return Check(name, "fail", detail, fix, "daemon")
    detail = f"last completed {fmt_age(age)} ago (period {fmt_age(period)}){failed}"
    return Check(name, "ok", detail, area="daemon")


def _orphans(conn: Connection, now: datetime, start: str) -> Check:
    """Slots still marked running whose owner stopped renewing the lease."""
    count, oldest = conn.execute(
        select(func.count(), func.min(ScheduleSlotRow.lease_until)).where(
            ScheduleSlotRow.status == "running", ScheduleSlotRow.lease_until < now
        )
    ).one()
    if not count:
        return Check("orphaned slots", "ok", "none", area="daemon")
    detail = f"{count} slot(s) still 'running' with the lease past, oldest {fmt_age(now - oldest)}"
    fix = f"a live daemon takes them over within its lease; if none is running, {start}"
    return Check("orphaned slots", "warn", detail, fix, "daemon")


def _outbox(conn: Connection, now: datetime) -> Check:
    """Pending deliveries per sink and the oldest's age: a backlog means a sink is down."""
    rows = conn.execute(
        select(DeliveryRow.sink, func.count(), func.min(DeliveryRow.created_at))
        .where(DeliveryRow.status == "pending")
        .group_by(DeliveryRow.sink)
        .order_by(DeliveryRow.sink)
    ).all()
    if not rows:
        return Check("outbox", "ok", "no pending deliveries", area="daemon")
    total = sum(count for _, count, _ in rows)
    oldest = min(created for _, _, created in rows)
    age = now - oldest
    per_sink = ", ".join(f"{sink}: {count}" for sink, count, _ in rows)
    detail = f"{total} pending ({per_sink}), oldest {fmt_age(age)}"
    if age <= OUTBOX_WARN:
        return Check("outbox", "ok", detail, area="daemon")
    last_error = conn.execute(
        select(DeliveryRow.last_error)
        .where(DeliveryRow.status == "pending", DeliveryRow.last_error.is_not(None))
        .order_by(DeliveryRow.created_at)
        .limit(1)
    ).scalar()
    if last_error:
        detail += f"; last error: {' '.join(last_error.split())[:200]}"
    status: Status = "fail" if age > OUTBOX_FAIL else "warn"
    fix = "the outbox is backing up: is the sink's receiver down? see the sink checks above"
    return Check("outbox", status, detail, fix, "daemon")


def _alerts(conn: Connection) -> Check:
    counts = dict(
        conn.execute(
            select(AlertRow.status, func.count())
            .where(AlertRow.status.in_(OPEN_ALERT_STATUSES))
            .group_by(AlertRow.status)
        ).all()
    )
    firing, pending = counts.get("firing", 0), counts.get("pending", 0)
    detail = f"{firing} firing, {pending} pending"
    if firing:
        return Check("alerts", "warn", detail, "see them with `canary alerts`", "daemon")
    return Check("alerts", "ok", detail, area="daemon")
