"""Two daemon processes on one PostgreSQL: no slot runs twice, and none is lost when one dies.

Both daemons fire every slot; the database decides who runs it. Daemon A is killed with SIGKILL
while it holds a slot mid-round; daemon B must take that slot over once A's lease runs out, mark
A's half-done run abandoned, and keep every later slot; SIGTERM then stops B cleanly.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from canary.config.fleet import FleetConfig
from canary.store import Store, open_store
from canary.store.models import RunRow, ScheduleSlotRow

pytestmark = pytest.mark.postgres

PERIOD_S = 2


@pytest.fixture(scope="module")
def fleet() -> Iterator[FleetConfig]:
    from canary.sim.embedded import embedded_fleet

    with embedded_fleet() as config:
        yield config


def write_config(tmp_path: Path, fleet: FleetConfig) -> Path:
    suite = tmp_path / "tiny.yaml"
    probes = [{"id": f"p{i}", "prompt": f"Return the number of item {i} in"} for i in range(6)]
    (tmp_path / "tiny.jsonl").write_text("\n".join(json.dumps(p) for p in probes) + "\n")
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "data": "tiny.jsonl",
                "defaults": {"kind": "generic", "params": {"temperature": 0.0, "max_tokens": 8}},
            }
        )
    )
    endpoint = fleet.endpoint("gpu-fp32")
    (tmp_path / "fleet.yaml").write_text(
        yaml.safe_dump({"endpoints": [endpoint.model_dump(exclude_defaults=True)]})
    )
    config = tmp_path / "daemon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "fleet": "fleet.yaml",
                "schedules": [{"name": "tiny", "suite": str(suite), "every": f"{PERIOD_S}s"}],
                "lease": "3s",
                "score": False,
            }
        )
    )
    return config


def start_daemon(config: Path, db: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "canary", "daemon", "--config", str(config), "--db", db],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "CANARY_DATABASE_URL": db},
    )


def slots(store: Store) -> list[ScheduleSlotRow]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(ScheduleSlotRow).order_by(ScheduleSlotRow.slot_at)).all())  # type: ignore[arg-type]


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_daemons_share_slots_and_survive_a_kill(
    fleet: FleetConfig, pg_url: str, tmp_path: Path
) -> None:
    store = open_store(pg_url)
    config = write_config(tmp_path, fleet)
    a = start_daemon(config, pg_url, tmp_path / "a.log")
    b = start_daemon(config, pg_url, tmp_path / "b.log")
    try:
        owners = lambda: {s.owner.split(":")[1] for s in slots(store) if s.status == "done"}  # noqa: E731
        wait_for(lambda: {str(a.pid), str(b.pid)} <= owners(), 60, "both daemons to run slots")

        def held_by_a() -> ScheduleSlotRow | None:
            with store.engine.connect() as conn:
                running = set(
                    conn.execute(select(RunRow.id).where(RunRow.status == "running")).scalars()
                )
            for s in slots(store):
                if s.status == "running" and f":{a.pid}:" in s.owner and s.run_id in running:
                    return s
            return None

        victim = wait_for(held_by_a, 60, "daemon A to hold a slot mid-round")
        a.send_signal(signal.SIGKILL)
        a.wait(10)

        def taken_over() -> ScheduleSlotRow | None:
            for s in slots(store):
                if s.id == victim.id and s.status == "done":
                    return s
            return None

        recovered = wait_for(taken_over, 30, "daemon B to take over the dead daemon's slot")
        assert f":{b.pid}:" in recovered.owner and recovered.attempts == 2
        time.sleep(3 * PERIOD_S)
        b.send_signal(signal.SIGTERM)
        assert b.wait(30) == 0, (tmp_path / "b.log").read_text()[-3000:]
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()

    rows = slots(store)
    done = [s for s in rows if s.status == "done"]
    assert all(s.status in ("done", "aborted") for s in rows), [(s.slot_at, s.status) for s in rows]
    assert all(s.status == "done" for s in rows[:-1]), "only the slot B was stopped in may abort"
    times = [s.slot_at for s in rows]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert set(gaps) == {timedelta(seconds=PERIOD_S)}, "a slot was lost or repeated"
    with store.engine.connect() as conn:
        runs = {r.id: r for r in conn.execute(select(RunRow.id, RunRow.status, RunRow.note))}
    assert runs[victim.run_id].status == "abandoned"  # type: ignore[index]
    completed_per_slot: dict[str, int] = {}
    for run in runs.values():
        if run.status == "completed":
            completed_per_slot[run.note] = completed_per_slot.get(run.note, 0) + 1
    assert max(completed_per_slot.values()) == 1, "a slot ran twice"
    assert len(completed_per_slot) == len(done)
    assert not [r for r in runs.values() if r.status == "running"], "a run was left half-written"
