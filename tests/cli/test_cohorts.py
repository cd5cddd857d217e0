"""`canary cohorts`: per-cohort counts from SQL, monitors and open alerts, problems first."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from sqlalchemy import update
from typer.testing import CliRunner

from canary.cli.cohorts import cohorts
from canary.store import Store, open_store
from canary.store.alert_values import alert_fingerprint
from canary.store.cohorts import cohort_health
from canary.store.models import MonitorRow
from tests.daemon.rows import add_alert, add_monitor
from tests.store.helpers import error_record, labels_for, make_endpoints, make_suite, ok_record

app = typer.Typer()
app.command("cohorts")(cohorts)


@app.command("noop", hidden=True)
def _noop() -> None:
    """Keeps `cohorts` a subcommand, as it is under `canary`."""


runner = CliRunner()
NOW = datetime.now(UTC)
HEALTHY = labels_for("gpu-a")
FAILING = labels_for("gpu-b")
BURST = {**HEALTHY, "load": "burst-c8"}


def set_monitor(store: Store, labels: dict[str, str], metric: str, status: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(MonitorRow)
            .where(MonitorRow.fingerprint == alert_fingerprint(labels, metric))
            .values(status=status)
        )


@pytest.fixture
def store(any_db_url: str) -> Store:
    """gpu-a healthy; gpu-b with one error in three; gpu-a under burst firing but silent for
    two days; and an older cohort with nothing open, which is left out."""
    store = open_store(any_db_url)
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())
    run_id = store.start_run(suite_id)
    hour_ago = NOW - timedelta(hours=1)
    records = [
        *(ok_record("gpu-a", i, started_at=hour_ago + timedelta(seconds=i)) for i in range(4)),
        *(ok_record("gpu-b", i, started_at=hour_ago + timedelta(seconds=i)) for i in range(4, 6)),
        replace(error_record("gpu-b", 6), started_at=hour_ago + timedelta(minutes=5)),
        ok_record("gpu-a", 7, labels=BURST, started_at=NOW - timedelta(days=2)),
        ok_record("gpu-a", 8, labels={**BURST, "load": "old"}, started_at=NOW - timedelta(days=3)),
    ]
    store.save_results(run_id, suite_id, records)
    store.finish_run(run_id)
    add_monitor(store, HEALTHY, "code_fail")
    add_monitor(store, HEALTHY, "empty_output")
    add_monitor(store, BURST, "code_fail")
    add_monitor(store, BURST, "empty_output")
    set_monitor(store, BURST, "code_fail", "firing")
    add_alert(store, BURST, "code_fail", "firing")
    add_alert(store, BURST, "empty_output", "resolved")
    return store


def invoke(store: Store, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["cohorts", "--db", store.url, "--json", *args])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_grouping_and_problems_first(store: Store) -> None:
    called = datetime.now(UTC)
    report = invoke(store)
    returned = datetime.now(UTC)

    rows = report["cohorts"]
    assert [r["labels"] for r in rows] == [BURST, FAILING, HEALTHY]
    burst, failing, healthy = rows
    assert burst["status"] == "firing"
    assert (burst["results"], burst["errors"], burst["open_alerts"]) == (0, 0, 1)
    assert burst["monitors"] == {"code_fail": "firing", "empty_output": "ok"}
    assert datetime.fromisoformat(burst["last_seen"]) < NOW - timedelta(days=1)
    assert burst["cohort"] == "endpoint=gpu-a,pool=a,model=m1,load=burst-c8"

    assert failing["status"] == "errors"
    assert (failing["results"], failing["errors"]) == (3, 1)
    assert failing["error_rate"] == pytest.approx(1 / 3)
    assert failing["monitors"] == {} and failing["open_alerts"] == 0
    assert datetime.fromisoformat(failing["last_seen"]) == NOW - timedelta(minutes=55)

    assert healthy["status"] == "ok"
    assert (healthy["results"], healthy["errors"]) == (4, 0)
    assert healthy["monitors"] == {"code_fail": "ok", "empty_output": "ok"}
    # The default window is the 24 h before the command ran, however slow the machine is.
    since = datetime.fromisoformat(report["since"])
    assert called - timedelta(hours=24, seconds=1) <= since <= returned - timedelta(hours=24)


def test_select_and_since(store: Store) -> None:
    assert [r["labels"] for r in invoke(store, "--select", "pool=b")["cohorts"]] == [FAILING]
    wide = invoke(store, "--since", "4d")["cohorts"]
    assert {r["labels"]["load"] for r in wide} == {"probe", "burst-c8", "old"}
    assert next(r for r in wide if r["labels"] == BURST)["results"] == 1
    assert invoke(store, "--select", "pool=zzz")["cohorts"] == []


def test_table_output(store: Store) -> None:
    result = runner.invoke(app, ["cohorts", "--db", store.url], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "3 cohort(s) since" in result.output
    assert "code_fail firing" in result.output and "1 ok" in result.output
    assert "1 (33.3%)" in result.output


def test_library_call_on_an_empty_store(sqlite_url: str) -> None:
    empty = open_store(sqlite_url)
    assert cohort_health(empty, since=NOW - timedelta(days=1)) == []
