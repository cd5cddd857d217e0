"""Runs whose process died are found (host + pid + heartbeat) and closed as `abandoned`.

Heartbeat staleness is judged against a `now` the test passes in, never by sleeping.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.probes.model import Probe, Suite
from canary.runner.once import run_once
from canary.store import Store, open_store
from canary.store.liveness import STALE_AFTER, process_alive, process_start_ticks, this_process
from canary.store.models import RunRow
from tests.store.helpers import T0, make_endpoints, make_suite
from tests.support.openai_server import serve_openai

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(any_db_url: str) -> Iterator[Store]:
    opened = open_store(any_db_url)
    try:
        yield opened
    finally:
        opened.close()


def new_run(store: Store) -> int:
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())
    return store.start_run(suite_id, trigger="test")


def set_run(store: Store, run_id: int, **values: object) -> None:
    """Make a run look as another process or host left it (the test is that process)."""
    with store.write_transaction() as conn:
        conn.execute(update(RunRow).where(RunRow.id == run_id).values(**values))


def test_a_run_records_its_process_and_a_first_heartbeat(store: Store) -> None:
    run = store.get_run(new_run(store))
    me = this_process()
    assert (run.status, run.host, run.pid) == ("running", me.host, os.getpid())
    assert run.heartbeat_at == run.started_at
    assert run.to_dict()["heartbeat_at"] == run.started_at.isoformat()
    assert store.mark_abandoned_runs() == []  # this process is alive


def test_heartbeat_moves_forward_and_stops_once_the_run_ended(store: Store) -> None:
    run_id = new_run(store)
    assert store.heartbeat(run_id, now=T0 + timedelta(hours=1)) is True
    assert store.get_run(run_id).heartbeat_at == T0 + timedelta(hours=1)
    store.finish_run(run_id, "completed")
    assert store.heartbeat(run_id, now=T0 + timedelta(hours=2)) is False
    assert store.get_run(run_id).heartbeat_at == T0 + timedelta(hours=1)


def test_a_run_on_another_host_is_abandoned_once_its_heartbeat_is_stale(store: Store) -> None:
    run_id = new_run(store)
    beat = T0 + timedelta(minutes=5)
    set_run(store, run_id, host="gpu-box-7", pid=4242)
    store.heartbeat(run_id, now=beat)

    assert store.mark_abandoned_runs(now=beat + STALE_AFTER) == []
    assert store.get_run(run_id).status == "running"
    assert store.mark_abandoned_runs(now=beat + STALE_AFTER + timedelta(seconds=1)) == [run_id]
    run = store.get_run(run_id)
    assert (run.status, run.finished_at) == ("abandoned", beat)
    # Marking is idempotent, and an abandoned run takes no more heartbeats.
    assert store.mark_abandoned_runs(now=beat + timedelta(days=1)) == []
    assert store.heartbeat(run_id) is False


def test_a_live_process_keeps_its_run_even_with_a_stale_heartbeat(store: Store) -> None:
    run_id = new_run(store)
    store.heartbeat(run_id, now=T0)
    assert store.mark_abandoned_runs(now=T0 + timedelta(days=3)) == []
    assert store.get_run(run_id).status == "running"


def test_a_run_whose_process_exited_is_abandoned_at_once(any_db_url: str, store: Store) -> None:
    suite_id = store.register_suite(make_suite())
    code = (
        "import sys; from canary.store import open_store; "
        "print(open_store(sys.argv[1], auto_create=False).start_run(int(sys.argv[2])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, any_db_url, str(suite_id)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    run_id = int(done.stdout)
    left = store.get_run(run_id)
    assert left.status == "running" and left.pid not in (None, os.getpid())
    assert left.heartbeat_at is not None

    # Its heartbeat is fresh, but its pid is gone: no need to wait STALE_AFTER.
    assert store.mark_abandoned_runs(now=left.heartbeat_at + timedelta(seconds=1)) == [run_id]
    run = store.get_run(run_id)
    assert (run.status, run.finished_at) == ("abandoned", left.heartbeat_at)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_reused_pid_is_not_taken_for_the_process_that_recorded_it(store: Store) -> None:
    me = this_process()
    assert me.started is not None and process_start_ticks(os.getpid()) == me.started
    assert process_alive(os.getpid(), me.started)
    assert not process_alive(os.getpid(), me.started + 1)

    run_id = new_run(store)
    set_run(store, run_id, pid_started=me.started + 1)  # our pid, someone else's start time
    assert store.mark_abandoned_runs() == [run_id]


def test_a_run_from_before_heartbeats_is_judged_by_its_start(store: Store) -> None:
    """Rows written before revision 0005 have no pid and no heartbeat."""
    run_id = new_run(store)
    set_run(store, run_id, pid=None, pid_started=None, heartbeat_at=None, started_at=T0)
    assert store.mark_abandoned_runs(now=T0 + STALE_AFTER / 2) == []
    assert store.mark_abandoned_runs(now=T0 + 2 * STALE_AFTER) == [run_id]
    assert store.get_run(run_id).finished_at == T0


def test_a_round_beats_while_it_waits_on_a_slow_endpoint(store: Store) -> None:
    suite = Suite(name="slow", probes=[Probe(id="wait", prompt="[[slow:1.5]] take your time")])
    with serve_openai() as fake:
        fleet = FleetConfig(
            defaults=Limits(timeout_s=30, max_retries=0),
            endpoints=[EndpointConfig(name="slow-a", base_url=fake.base_url, model="m")],
        )
        stored = run_once(
            fleet, suite, store, fleet.endpoints, handle_signals=False, heartbeat_every=0.05
        )
    run = store.get_run(stored.run_id)
    assert (run.status, run.n_results) == ("completed", 1)
    # No result was saved before the slow reply, yet the heartbeat moved on meanwhile.
    assert run.heartbeat_at is not None and run.heartbeat_at > run.started_at


def test_a_read_only_database_still_lists_its_abandoned_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ro.db"
    writable = open_store(f"sqlite:///{path}")
    run_id = new_run(writable)
    set_run(writable, run_id, host="gpu-box-7")
    writable.close()

    read_only = open_store(f"sqlite:///file:{path}?mode=ro&uri=true", auto_create=False)
    beat = read_only.get_run(run_id).heartbeat_at
    assert beat is not None
    assert read_only.mark_abandoned_runs(now=beat + 2 * STALE_AFTER) == []
    assert read_only.get_run(run_id).status == "running"
    assert f"runs {run_id} were abandoned but cannot be marked so" in caplog.text
    assert "read-only" in caplog.text
