"""Daemon health read from the store: stale schedules, orphaned slots, the outbox, open alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from canary.doctor import exit_code, run_checks
from canary.errors import ExitCode
from canary.store import Store
from canary.store.models import DeliveryRow, NotificationRow, ScheduleSlotRow
from tests.daemon.rows import add_alert
from tests.doctor.conftest import DaemonFile
from tests.doctor.helpers import by_name

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def add_slot(
    store: Store,
    schedule: str,
    status: str,
    *,
    finished_ago: timedelta | None = None,
    lease_ago: timedelta = timedelta(0),
    error: str | None = None,
) -> None:
    slot_at = NOW - (finished_ago or lease_ago) - timedelta(seconds=30)
    with store.engine.begin() as conn:
        conn.execute(
            insert(ScheduleSlotRow).values(
                schedule=schedule,
                slot_at=slot_at,
                status=status,
                owner="host:1:abc",
                lease_until=NOW - lease_ago,
                finished_at=None if finished_ago is None else NOW - finished_ago,
                error=error,
            )
        )


def add_pending_delivery(store: Store, sink: str, age: timedelta, error: str) -> None:
    with store.engine.begin() as conn:
        notification = conn.execute(
            insert(NotificationRow)
            .values(group_key="alert:x", status="firing", payload={}, created_at=NOW - age)
            .returning(NotificationRow.id)
        ).scalar_one()
        conn.execute(
            insert(DeliveryRow).values(
                notification_id=notification,
                sink=sink,
                status="pending",
                attempts=4,
                last_error=error,
                created_at=NOW - age,
            )
        )


def test_fresh_store_warns_that_no_slot_completed(daemon_file: DaemonFile, store: Store) -> None:
    path = daemon_file()
    checks = by_name(run_checks(config=path, db=store.url, now=NOW))

    last = checks["last run tiny"]
    assert last.status == "warn" and last.detail == "no completed slot yet"
    assert f"canary daemon --config {path}" in last.fix
    assert checks["orphaned slots"].status == "ok"
    assert checks["outbox"].detail == "no pending deliveries"
    assert checks["alerts"].detail == "0 firing, 0 pending"


def test_recent_slot_is_ok_and_old_one_is_stale(daemon_file: DaemonFile, store: Store) -> None:
    add_slot(store, "tiny", "done", finished_ago=timedelta(minutes=4))
    recent = by_name(run_checks(config=daemon_file(), db=store.url, now=NOW))["last run tiny"]
    assert recent.status == "ok"
    assert recent.detail == "last completed 4m ago (period 5m)"

    later = NOW + timedelta(minutes=20)
    add_slot(store, "tiny", "failed", finished_ago=timedelta(minutes=-1), error="boom\ntrace")
    checks = run_checks(config=daemon_file(), db=store.url, now=later)
    stale = by_name(checks)["last run tiny"]
    assert stale.status == "fail"
    assert stale.detail.startswith("stale: last completed 24m ago, over 3 periods of 5m")
    assert stale.detail.endswith("latest slot failed: boom trace")
    assert exit_code(checks) == ExitCode.DATA


def test_slots_of_older_daemons_keyed_by_load_count(daemon_file: DaemonFile, store: Store) -> None:
    add_slot(store, "tiny/probe", "done", finished_ago=timedelta(minutes=1))
    add_slot(store, "tiny_x", "done", finished_ago=timedelta(seconds=1))

    last = by_name(run_checks(config=daemon_file(), db=store.url, now=NOW))["last run tiny"]

    assert last.detail == "last completed 1m ago (period 5m)"


def test_orphaned_slots_outbox_and_firing_alerts(store: Store) -> None:
    add_slot(store, "tiny", "running", lease_ago=timedelta(minutes=10))
    add_slot(store, "tiny", "running", lease_ago=timedelta(seconds=-30))  # lease still held
    add_pending_delivery(store, "ops-slack", timedelta(minutes=30), "HTTP 503 from POST /")
    add_pending_delivery(store, "ops-slack", timedelta(minutes=2), "HTTP 503 from POST /")
    add_alert(store, {"endpoint": "a"}, "code_fail", "firing")
    add_alert(store, {"endpoint": "b"}, "code_fail", "pending")
    add_alert(store, {"endpoint": "c"}, "code_fail", "resolved")

    checks = run_checks(db=store.url, now=NOW)
    found = by_name(checks)

    orphans = found["orphaned slots"]
    assert orphans.status == "warn"
    assert orphans.detail == "1 slot(s) still 'running' with the lease past, oldest 10m"
    outbox = found["outbox"]
    assert outbox.status == "warn"
    assert outbox.detail == (
        "2 pending (ops-slack: 2), oldest 30m; last error: HTTP 503 from POST /"
    )
    assert "backing up" in outbox.fix
    assert (found["alerts"].status, found["alerts"].detail) == ("warn", "1 firing, 1 pending")
    assert exit_code(checks) == ExitCode.OK

    late = by_name(run_checks(db=store.url, now=NOW + timedelta(hours=1)))["outbox"]
    assert late.status == "fail"


def test_recently_failed_slots_fail_doctor_naming_schedule_count_and_where_to_look(
    daemon_file: DaemonFile, store: Store
) -> None:
    add_slot(store, "tiny", "done", finished_ago=timedelta(minutes=1))
    healthy = run_checks(config=daemon_file(), db=store.url, now=NOW)
    assert by_name(healthy)["failed slots"].detail == "none recently"
    assert exit_code(healthy) == ExitCode.OK

    for minutes in (2, 7):
        add_slot(
            store,
            "tiny",
            "failed",
            finished_ago=timedelta(minutes=minutes),
            error="IntegrityError: (sqlite3.IntegrityError) refused\n[SQL: INSERT …]",
        )
    add_slot(store, "tiny", "failed", finished_ago=timedelta(hours=3), error="long ago")
    checks = run_checks(config=daemon_file(), db=store.url, now=NOW)
    failed = by_name(checks)["failed slots"]
    assert (failed.status, failed.area) == ("fail", "daemon")
    assert failed.detail == (
        "tiny: 2 failed in the last 1h 0m "
        "(IntegrityError: (sqlite3.IntegrityError) refused [SQL: INSERT …])"
    )
    assert "daemon's log" in failed.fix and "slot tiny@" in failed.fix
    assert by_name(checks)["last run tiny"].status == "ok", "the schedule still runs"
    assert exit_code(checks) == ExitCode.DATA

    later = by_name(run_checks(config=daemon_file(), db=store.url, now=NOW + timedelta(hours=2)))
    assert later["failed slots"].status == "ok", "old failures no longer fail doctor"


def test_doctor_exits_non_zero_on_a_failed_slot(store: Store) -> None:
    from typer.testing import CliRunner

    from canary.store.models import utcnow
    from tests.doctor.helpers import app

    with store.engine.begin() as conn:
        conn.execute(
            insert(ScheduleSlotRow).values(
                schedule="topk",
                slot_at=utcnow() - timedelta(minutes=5),
                status="failed",
                owner="host:1:abc",
                lease_until=utcnow(),
                error="TypeError: boom",
            )
        )
    result = CliRunner().invoke(app, ["doctor", "--db", store.url])
    assert result.exit_code == ExitCode.DATA, result.output
    assert "topk: 1 failed in the last 1h 0m (TypeError: boom)" in result.output
