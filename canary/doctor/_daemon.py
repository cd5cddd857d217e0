"""Daemon health as the database shows it: schedules running on time, no recently failed
slots, slots not orphaned, the notification outbox draining, and how many alerts are open.

Read from the store rather than from a daemon's HTTP endpoint, so one `canary doctor` sees every
daemon sharing the database, including those that died.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from canary.doctor._check import Check, Status, fmt_age
from canary.errors import CanaryError
from canary.sanitize import one_line
from canary.store.alert_values import OPEN_ALERT_STATUSES

if TYPE_CHECKING:
    from canary.daemon.config import DaemonConfig, ScheduleConfig
    from canary.store import Store
    from canary.store.daemon_state import DaemonState, ScheduleHistory

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
    store: Store, daemon: DaemonConfig | None, now: datetime, config_path: Path | None = None
) -> list[Check]:
    """Per-schedule freshness (with a daemon config), orphaned slots, outbox, open alerts."""
    from canary.store.daemon_state import read_daemon_state

    start = f"start one: `canary daemon --config {config_path or 'DAEMON.yaml'}`"
    schedules = daemon.schedules if daemon else []
    windows = _failure_windows(schedules)
    state = read_daemon_state(
        store,
        schedules=[s.name for s in schedules],
        failed_since=now - max([RECENT_AT_LEAST, *windows.values()]),
        now=now,
        open_statuses=OPEN_ALERT_STATUSES,
    )
    checks = [_schedule_health(state.schedules[s.name], s, now, start) for s in schedules]
    checks.append(_failed_slots(state, windows, now))
    checks += [_orphans(state, now, start), _outbox(state, now), _alerts(state)]
    return checks


def _failure_windows(schedules: list[ScheduleConfig]) -> dict[str, timedelta]:
    """How far back a failed slot of each schedule counts as recent."""
    from canary.daemon.timing import period_of

    windows: dict[str, timedelta] = {}
    for schedule in schedules:
        try:
            windows[schedule.name] = max(RECENT_PERIODS * period_of(schedule), RECENT_AT_LEAST)
        except CanaryError:
            windows[schedule.name] = RECENT_AT_LEAST
    return windows


def _failed_slots(state: DaemonState, windows: dict[str, timedelta], now: datetime) -> Check:
    """Slots that failed recently, per schedule: a daemon that keeps probing but cannot finish
    its slots (a scoring bug, a database error) must fail doctor, not pass it quietly."""
    failed: dict[str, list[str | None]] = {}
    for row in state.failed:
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
    history: ScheduleHistory, schedule: ScheduleConfig, now: datetime, start: str
) -> Check:
    from canary.daemon.timing import period_of

    name = f"last run {schedule.name}"
    last_done = history.last_done
    try:
        period = period_of(schedule)
    except CanaryError:
        return Check(name, "warn", "not checked: the timetable is invalid", "", "daemon")
    failed = ""
    if history.latest_status == "failed":
        failed = f"; latest slot failed: {' '.join((history.latest_error or '-').split())[:200]}"
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


def _orphans(state: DaemonState, now: datetime, start: str) -> Check:
    """Slots still marked running whose owner stopped renewing the lease."""
    count, oldest = state.orphans, state.oldest_orphan_lease
    if not count:
        return Check("orphaned slots", "ok", "none", area="daemon")
    age = fmt_age(now - oldest) if oldest is not None else "?"
    detail = f"{count} slot(s) still 'running' with the lease past, oldest {age}"
    fix = f"a live daemon takes them over within its lease; if none is running, {start}"
    return Check("orphaned slots", "warn", detail, fix, "daemon")


def _outbox(state: DaemonState, now: datetime) -> Check:
    """Pending deliveries per sink and the oldest's age: a backlog means a sink is down."""
    rows = [(b.sink, b.pending, b.oldest) for b in state.outbox]
    if not rows:
        return Check("outbox", "ok", "no pending deliveries", area="daemon")
    total = sum(count for _, count, _ in rows)
    oldest = min(created for _, _, created in rows)
    age = now - oldest
    per_sink = ", ".join(f"{sink}: {count}" for sink, count, _ in rows)
    detail = f"{total} pending ({per_sink}), oldest {fmt_age(age)}"
    if age <= OUTBOX_WARN:
        return Check("outbox", "ok", detail, area="daemon")
    last_error = state.oldest_pending_error
    if last_error:
        detail += f"; last error: {' '.join(last_error.split())[:200]}"
    status: Status = "fail" if age > OUTBOX_FAIL else "warn"
    fix = "the outbox is backing up: is the sink's receiver down? see the sink checks above"
    return Check("outbox", status, detail, fix, "daemon")


def _alerts(state: DaemonState) -> Check:
    counts = state.open_alerts
    firing, pending = counts.get("firing", 0), counts.get("pending", 0)
    detail = f"{firing} firing, {pending} pending"
    if firing:
        return Check("alerts", "warn", detail, "see them with `canary alerts`", "daemon")
    return Check("alerts", "ok", detail, area="daemon")
