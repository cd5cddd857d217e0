"""Database checks on real SQLite and PostgreSQL databases: reachable, schema, write."""

from __future__ import annotations

import socket
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import func, select

from canary.doctor import Check, exit_code, run_checks
from canary.errors import ExitCode
from canary.store import open_store, upgrade
from canary.store.migrate import head_revision
from canary.store.models import CohortRow
from tests.doctor.helpers import by_name


def test_fresh_sqlite_file_fails_with_the_fix_and_is_not_created(sqlite_url: str) -> None:
    checks = by_name(run_checks(db=sqlite_url))

    database = checks["database"]
    assert (database.status, database.area) == ("fail", "database")
    assert "does not exist" in database.detail
    assert "canary db upgrade" in database.fix
    assert "schema" not in checks and "database write" not in checks
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()
    assert exit_code(checks.values()) == ExitCode.DATA


def test_empty_sqlite_database_has_no_schema(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()

    checks = by_name(run_checks(db=f"sqlite:///{path}"))

    assert checks["database"].status == "ok"
    assert checks["schema"].status == "fail"
    assert checks["schema"].fix == "run `canary db upgrade` to create it"


def test_schema_behind_head_fails_then_passes_after_open_store(sqlite_url: str) -> None:
    upgrade(sqlite_url, "0003")

    behind = by_name(run_checks(db=sqlite_url))["schema"]
    assert behind.status == "fail"
    assert behind.detail == f"at revision 0003, this canary needs {head_revision()}"
    assert behind.fix == "run `canary db upgrade`"

    upgrade(sqlite_url)
    open_store(sqlite_url).close()
    checks = run_checks(db=sqlite_url)
    found = by_name(checks)
    for name in ("database", "schema", "database write"):
        assert found[name].status == "ok", found[name]
    assert "SQLite" in found["database"].detail
    assert found["schema"].detail == f"at head revision {head_revision()}"
    assert exit_code(checks) == ExitCode.OK  # the "no config given" warning is no failure


def test_postgresql_reachable_at_head_and_writable_without_leaving_rows(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        found = by_name(run_checks(db=pg_url))
        assert found["database"].status == "ok" and "PostgreSQL" in found["database"].detail
        assert found["schema"].status == "ok"
        assert found["database write"].status == "ok"
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(CohortRow)).scalar() == 0
    finally:
        store.close()


def test_a_silent_postgresql_server_fails_on_the_connect_timeout() -> None:
    """A server that accepts TCP and never answers: the timeout, not a hang, ends the check."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"postgresql://canary:hunter2-secret@127.0.0.1:{silent.getsockname()[1]}/canary"
        found: list[list[Check]] = []
        worker = threading.Thread(
            target=lambda: found.append(run_checks(db=url, timeout_s=2)), daemon=True
        )
        worker.start()
        worker.join(timeout=300)  # generous: only an unbounded connect gets near it
        assert found, "doctor hung on a database server that never answers"
    database = by_name(found[0])["database"]
    assert database.status == "fail"
    assert "timeout expired" in database.detail and "hunter2-secret" not in database.detail
    assert exit_code(found[0]) == ExitCode.DATA


def test_bad_postgresql_url_fails_on_one_line_without_the_password() -> None:
    url = "postgresql://canary:hunter2-secret@127.0.0.1:1/canary"

    checks = run_checks(db=url, timeout_s=2)

    database = by_name(checks)["database"]
    assert database.status == "fail"
    assert "\n" not in database.detail and "\n" not in database.fix
    assert "hunter2-secret" not in database.detail
    assert database.detail.startswith(
        "cannot connect to postgresql+psycopg://canary:***@127.0.0.1:1"
    )
    assert exit_code(checks) == ExitCode.DATA


def test_unsupported_database_url_is_a_database_failure() -> None:
    database = by_name(run_checks(db="mysql://u:pw@h/db"))["database"]
    assert database.status == "fail" and "pw" not in database.detail
