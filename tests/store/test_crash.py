"""A writer killed mid-batch leaves whole batches only, and the database stays usable."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, func, select

from canary.store import Store, open_store
from canary.store.models import CohortRow, ResultRow, RunRow
from tests.store.helpers import batch, make_endpoints, make_suite
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
BATCH = 150


def wait_for_rows(store: Store, writer: subprocess.Popen[bytes], at_least: int) -> None:
    wait_until(lambda: store.count_results() >= at_least, writer, f"storing {at_least} results")


def writer_in_transaction(url: str) -> bool:
    """Whether another connection has a write transaction open right now."""
    if url.startswith("sqlite"):
        probe = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return True
        finally:
            probe.close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                ).scalar()
            )
    finally:
        engine.dispose()


def kill_mid_transaction(url: str, writer: subprocess.Popen[bytes]) -> None:
    wait_until(lambda: writer_in_transaction(url), writer, "a write transaction", poll_s=0)
    writer.send_signal(signal.SIGKILL)


def test_kill_during_writes_loses_only_the_open_batch(any_db_url: str) -> None:
    store = open_store(any_db_url)
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())
    run_id = store.start_run(suite_id, trigger="crash-test")

    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.store._writer",
            any_db_url,
            str(run_id),
            str(suite_id),
            str(BATCH),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_rows(store, writer, 3 * BATCH)
        kill_mid_transaction(any_db_url, writer)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    store.close()

    # What survived, checked through a plain engine so nothing canary does hides a problem.
    engine = create_engine(any_db_url)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(ResultRow)).scalar_one()
        incomplete = conn.execute(
            select(func.count())
            .select_from(ResultRow)
            .where(
                ResultRow.session_id.is_(None)
                | ResultRow.started_at.is_(None)
                | ResultRow.latency_ms.is_(None)
                | ResultRow.request.is_(None)
                | ResultRow.response.is_(None)
            )
        ).scalar_one()
        orphans = conn.execute(
            select(func.count())
            .select_from(ResultRow)
            .outerjoin(RunRow, RunRow.id == ResultRow.run_id)
            .outerjoin(CohortRow, CohortRow.id == ResultRow.cohort_id)
            .where(RunRow.id.is_(None) | CohortRow.id.is_(None))
        ).scalar_one()
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()
    assert total >= 3 * BATCH
    assert total % BATCH == 0, f"{total} results is not a whole number of {BATCH}-result batches"
    assert (incomplete, orphans) == (0, 0)

    reopened = open_store(any_db_url, auto_create=False)
    stored = reopened.results_for_run(run_id)
    assert len(stored) == total
    assert all(isinstance(r.request, dict) and r.request["model"] == "m1" for r in stored)
    assert all(r.tokens is not None and len(r.tokens) == 32 for r in stored)
    reopened.save_results(run_id, suite_id, batch(BATCH, start=total))
    reopened.finish_run(run_id, "aborted")
    assert reopened.get_run(run_id).n_results == total + BATCH
