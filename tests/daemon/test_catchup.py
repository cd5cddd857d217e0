"""Slots that passed while no daemon was up: recorded as missed, counted, logged, and run when a
`catch_up` policy asks; failed and skipped slots are counted too, and all of it is on /metrics."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import insert, select, text

from canary.config.fleet import FleetConfig
from canary.daemon.catchup import MISSED_REASON
from canary.daemon.config import DaemonConfig
from canary.daemon.http import ControlServer, build_control_app
from canary.daemon.launch import open_daemon
from canary.daemon.service import Daemon
from canary.daemon.slots import SlotLedger
from canary.store import Store, open_store
from canary.store.models import ScheduleSlotRow

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
# An endpoint nothing listens on: a slot's round is quick, every request an error row.
FLEET = {
    "defaults": {"max_retries": 0, "connect_timeout_s": 2, "timeout_s": 2},
    "endpoints": [{"name": "down", "base_url": "http://127.0.0.1:9/v1", "model": "m"}],
}


@pytest.fixture
def suite(tmp_path: Path) -> str:
    (tmp_path / "tiny.jsonl").write_text(json.dumps({"id": "p0", "prompt": "Say hi"}) + "\n")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "data": "tiny.jsonl"}))
    return str(path)


def daemon(store: Store, suite: str, **config: Any) -> Daemon:
    schedule = {"name": "tiny", "suite": suite, "every": "5m"} | config.pop("schedule", {})
    settings = {"fleet": "fleet.yaml", "score": False, "schedules": [schedule], **config}
    return Daemon(DaemonConfig.model_validate(settings), FleetConfig.model_validate(FLEET), store)


def add_slot(store: Store, slot_at: datetime, status: str = "done") -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(ScheduleSlotRow).values(
                schedule="tiny", slot_at=slot_at, status=status, owner="old:1:x", lease_until=T0
            )
        )


def slots(store: Store) -> dict[datetime, tuple[str, str | None]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(ScheduleSlotRow.slot_at, ScheduleSlotRow.status, ScheduleSlotRow.error)
        )
        return {r.slot_at: (r.status, r.error) for r in rows}


def counted(d: Daemon, status: str) -> float | None:
    return d.metrics.registry.get_sample_value(
        "canary_slots_total", {"schedule": "tiny", "status": status}
    )


def test_missed_slots_are_recorded_once_counted_and_logged_in_one_line(
    any_db_url: str, suite: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(any_db_url)
    add_slot(store, T0)  # the last slot a daemon ran before they all went down
    first, second = daemon(store, suite), daemon(store, suite)
    caplog.set_level(logging.WARNING, logger="canary.daemon.catchup")

    # 31m: the 12:30 slot may still be fired by a live daemon inside its grace: not yet missed.
    assert first.catch_up(now=T0 + 31 * MIN) == [] and second.catch_up(now=T0 + 31 * MIN) == []
    assert set(slots(store)) == {T0}
    # Only the catch-up's own lines: alembic logs its migrations at INFO once a fileConfig ran.
    assert [r for r in caplog.records if r.name == "canary.daemon.catchup"] == []

    assert first.catch_up(now=T0 + 33 * MIN) == []
    assert second.catch_up(now=T0 + 33 * MIN) == []  # found the same six; recorded none again
    missed = {at: row for at, row in slots(store).items() if at != T0}
    assert sorted(missed) == [T0 + n * 5 * MIN for n in range(1, 7)]
    assert set(missed.values()) == {("missed", MISSED_REASON)}
    assert counted(first, "missed") == 6 and counted(second, "missed") is None

    lines = [r.getMessage() for r in caplog.records if r.name == "canary.daemon.catchup"]
    assert lines[0] == (
        "schedule tiny: 6 slot(s) from 2026-11-24T12:05:00+00:00 to 2026-11-24T12:30:00+00:00 "
        "passed while no daemon was up; catch_up none: running 0, 6 recorded as missed"
    )
    assert first.catch_up(now=T0 + 40 * MIN) == [], "accounted once per daemon"
    store.close()


def test_catch_up_latest_runs_the_newest_slot_and_records_the_rest(
    sqlite_url: str, suite: str
) -> None:
    store = open_store(sqlite_url)
    add_slot(store, T0)
    d = daemon(store, suite, catch_up="latest")
    (outcome,) = d.catch_up(now=T0 + 32 * MIN)
    assert (outcome.slot_at, outcome.status) == (T0 + 30 * MIN, "done")
    assert outcome.rounds[0].errors == outcome.rounds[0].sent == 1
    statuses = {at: status for at, (status, _) in slots(store).items()}
    assert statuses.pop(T0 + 30 * MIN) == "done"
    assert statuses.pop(T0) == "done"
    assert set(statuses.values()) == {"missed"} and len(statuses) == 5
    assert (counted(d, "missed"), counted(d, "done")) == (5, 1)
    store.close()


def test_catch_up_all_runs_the_slots_within_recover_within(sqlite_url: str, suite: str) -> None:
    store = open_store(sqlite_url)
    add_slot(store, T0)
    d = daemon(store, suite, recover_within="12m", schedule={"catch_up": "all"})
    ran = d.catch_up(now=T0 + 32 * MIN)
    assert [o.slot_at for o in ran] == [T0 + 20 * MIN, T0 + 25 * MIN, T0 + 30 * MIN]
    statuses = {at: status for at, (status, _) in slots(store).items()}
    assert [at for at, s in sorted(statuses.items()) if s == "missed"] == [
        T0 + 5 * MIN,
        T0 + 10 * MIN,
        T0 + 15 * MIN,
    ]
    store.close()


def test_a_schedule_that_never_ran_has_missed_nothing(sqlite_url: str, suite: str) -> None:
    store = open_store(sqlite_url)
    d = daemon(store, suite, catch_up="all")
    assert d.catch_up(now=T0) == [] and slots(store) == {}
    store.close()


def test_failed_skipped_and_missed_slots_are_on_metrics(sqlite_url: str, suite: str) -> None:
    store = open_store(sqlite_url)
    add_slot(store, T0 - 10 * MIN)
    d = daemon(store, suite)
    d.catch_up(now=T0 + 3 * MIN)  # 11:55 and 12:00 passed with no daemon up
    with store.engine.begin() as conn:  # the database now refuses every new run
        conn.execute(
            text(
                "CREATE TRIGGER no_runs BEFORE INSERT ON runs "
                "BEGIN SELECT RAISE(ABORT, 'runs are refused'); END"
            )
        )
    failed = d.run_slot("tiny", T0 + 5 * MIN)
    assert failed.status == "failed" and "runs are refused" in (failed.error or "")
    SlotLedger(store, "other:2:y", timedelta(minutes=1)).claim("tiny", T0 + 10 * MIN)
    assert d.run_slot("tiny", T0 + 10 * MIN).status == "skipped"

    with ControlServer(build_control_app(store, d.metrics)) as server:
        exposed = httpx.get(f"{server.url}/metrics").text
    for status, value in (("failed", 1), ("skipped", 1), ("missed", 2)):
        assert f'canary_slots_total{{schedule="tiny",status="{status}"}} {value}.0' in exposed
    assert slots(store)[T0 + 5 * MIN][0] == "failed"
    store.close()


def test_secrets_the_config_names_never_reach_the_daemon_log(
    tmp_path: Path, suite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "https://hooks.example/T0KEN-9f8e7d"
    monkeypatch.setenv("TEST_DAEMON_HOOK", secret)
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(FLEET))
    config = tmp_path / "daemon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "fleet": "fleet.yaml",
                "schedules": [{"name": "tiny", "suite": suite, "every": "5m"}],
                "sinks": [{"type": "webhook", "url_env": "TEST_DAEMON_HOOK"}],
            }
        )
    )
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logging.Filter("canary"))  # not alembic's migration lines
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with open_daemon(config, db=f"sqlite:///{tmp_path / 'd.db'}"):
            logging.getLogger("canary.daemon.service").error("cannot post to %s", secret)
    finally:
        root.removeHandler(handler)
    assert out.getvalue() == "cannot post to ***\n"


def test_a_starting_daemon_catches_up_and_exposes_it_on_metrics(
    sqlite_url: str, suite: str
) -> None:
    from canary.daemon.timing import nominal_slot
    from canary.store.models import utcnow

    store = open_store(sqlite_url)
    d = daemon(
        store,
        suite,
        catch_up="latest",
        schedule={"every": "1h"},
        http={"port": 0},
    )
    current = nominal_slot(d.config.schedules[0], utcnow())
    add_slot(store, current - 180 * MIN)
    d.start()
    try:
        newest = wait_for(lambda: max(slots(store)) if len(slots(store)) >= 4 else None)
        wait_for(lambda: slots(store)[newest][0] == "done")
        assert d._control is not None
        exposed = httpx.get(f"{d._control.url}/metrics").text
    finally:
        d.stop()
    statuses = [status for _, (status, _) in sorted(slots(store).items())]
    assert statuses[0] == "done" and statuses[-1] == "done"
    assert set(statuses[1:-1]) == {"missed"}
    missed = len(statuses) - 2
    assert f'canary_slots_total{{schedule="tiny",status="missed"}} {missed}.0' in exposed
    assert 'canary_slots_total{schedule="tiny",status="done"} 1.0' in exposed
    store.close()


def wait_for(condition: Any, timeout_s: float = 60) -> Any:
    """Poll until `condition()` is truthy (a wait, not a timing assertion)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the daemon never got there")


def test_a_long_outage_accounts_its_newest_slots_only(sqlite_url: str, suite: str) -> None:
    from canary.daemon.catchup import MAX_SLOTS

    store = open_store(sqlite_url)
    add_slot(store, T0 - timedelta(days=30))
    d = daemon(store, suite, schedule={"every": "1m"})
    d.catch_up(now=T0 + 5 * MIN + timedelta(seconds=40))  # past the newest slot's grace
    missed = sorted(at for at, (status, _) in slots(store).items() if status == "missed")
    assert len(missed) <= MAX_SLOTS and counted(d, "missed") == len(missed)
    assert missed[-1] == T0 + 5 * MIN and missed[0] > T0 - timedelta(days=29)
    store.close()
