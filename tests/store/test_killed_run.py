"""A `canary run` killed with SIGKILL mid-round: `canary runs` says `abandoned`, and `canary
score` scores every result it stored. Real processes, the simulated fleet, both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from canary.cli.main import app
from canary.config.fleet import FleetConfig
from canary.store import open_store
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
#: Far more requests than are sent before the kill, one at a time: the round is mid-way.
PROBES = 2000
#: Results stored before the kill: several whole batches (the runner writes 32 at a time).
BEFORE_KILL = 64

runner = CliRunner()


@pytest.fixture(scope="module")
def fleet() -> Iterator[FleetConfig]:
    from canary.sim.embedded import embedded_fleet

    with embedded_fleet() as config:
        yield config


def write_inputs(tmp_path: Path, fleet: FleetConfig) -> tuple[Path, Path]:
    probes = [{"id": f"p{i}", "prompt": f"Return the number of item {i} in"} for i in range(PROBES)]
    (tmp_path / "long.jsonl").write_text("\n".join(json.dumps(p) for p in probes) + "\n")
    suite = tmp_path / "long.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "long",
                "data": "long.jsonl",
                "defaults": {"kind": "generic", "params": {"temperature": 0.0, "max_tokens": 8}},
            }
        )
    )
    endpoint = fleet.endpoint("gpu-fp32").model_dump(exclude_defaults=True)
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump({"defaults": {"concurrency": 1}, "endpoints": [endpoint]}))
    return suite, fleet_file


def wait_until_stored(db: str, process: subprocess.Popen[bytes], at_least: int) -> None:
    store = open_store(db, auto_create=False)
    try:
        wait_until(lambda: store.count_results() >= at_least, process, f"{at_least} results")
    finally:
        store.close()


def cli(*args: str) -> object:
    done = runner.invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def test_a_killed_run_is_abandoned_listed_and_scored(
    fleet: FleetConfig, any_db_url: str, tmp_path: Path
) -> None:
    open_store(any_db_url).close()  # migrated before the victim starts
    suite, fleet_file = write_inputs(tmp_path, fleet)
    victim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "canary",
            "run",
            "--suite",
            str(suite),
            "--fleet",
            str(fleet_file),
            "--db",
            any_db_url,
            "--no-score",
        ],
        cwd=REPO,
        env={**os.environ, "CANARY_DATABASE_URL": any_db_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_stored(any_db_url, victim, BEFORE_KILL)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    runs = cli("runs", "--db", any_db_url, "--json")
    assert isinstance(runs, list) and len(runs) == 1
    [run] = runs
    assert run["status"] == "abandoned", "the killed process's run must not stay `running`"
    assert run["suite"] == "long" and run["pid"] == victim.pid
    assert BEFORE_KILL <= run["n_results"] < PROBES
    assert run["finished_at"] == run["heartbeat_at"]

    report = cli("score", "--run", str(run["id"]), "--db", any_db_url, "--json")
    assert isinstance(report, dict) and report["results"] == run["n_results"]
    store = open_store(any_db_url, auto_create=False)
    try:
        stored = store.results_for_run(run["id"])
        assert len(stored) == run["n_results"]
        assert all(r.scores for r in stored if r.ok), "every answered request is scored"
        assert any(r.ok for r in stored)
        assert store.get_run(run["id"]).status == "abandoned"
    finally:
        store.close()
