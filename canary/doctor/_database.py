"""Database checks: reachable, at the schema head, and writable, on SQLite and PostgreSQL.

Nothing here changes the database: a missing SQLite file is reported, not created (as
`open_store` would), and the write check's insert is rolled back.
"""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, insert, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from canary.doctor._check import Check
from canary.store.engine import SQLITE_IMMEDIATE, make_engine, redact
from canary.store.models import Base, CohortRow

_CANARY_TABLES = frozenset(Base.metadata.tables)
_UPGRADE = "run `canary db upgrade`"


def doctor_engine(url: str, timeout_s: float) -> Engine:
    """The store's engine, with PostgreSQL connects bounded by ``timeout_s``."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        seconds = max(2, math.ceil(timeout_s))  # libpq reads connect_timeout below 2 s as 2

        @event.listens_for(engine, "do_connect")
        def _bounded(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            params["connect_timeout"] = seconds

    return engine


def check_database(engine: Engine, timeout_s: float) -> tuple[list[Check], bool]:
    """Reachability, schema revision and a rolled-back write; True when the schema is at head
    (so the checks that read canary's tables can run)."""
    shown = redact(engine.url)
    missing = _missing_sqlite_file(engine.url)
    if missing is not None:
        detail = f"{shown}: the file {missing} does not exist"
        return [Check("database", "fail", detail, f"{_UPGRADE} to create it", "database")], False
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            elapsed_ms = (time.perf_counter() - started) * 1000
            tables = set(inspect(conn).get_table_names())
            revision = _revision(conn)
    except SQLAlchemyError as exc:
        detail = f"cannot connect to {shown}: {_reason(exc, engine.url)}"
        fix = "is the server running and the URL right? check --db or CANARY_DATABASE_URL"
        return [Check("database", "fail", detail, fix, "database")], False
    server = f"{_server(engine)}, {elapsed_ms:.0f} ms"
    checks = [Check("database", "ok", f"{shown} reachable ({server})", area="database")]
    schema = _schema_check(tables, revision)
    checks.append(schema)
    if schema.status != "ok":
        return checks, False
    checks.append(_write_check(engine, timeout_s))
    return checks, True


def _revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _schema_check(tables: set[str], revision: str | None) -> Check:
    from canary.store.migrate import head_revision

    head = head_revision()
    if revision == head:
        return Check("schema", "ok", f"at head revision {head}", area="database")
    if "alembic_version" not in tables and tables & _CANARY_TABLES:
        detail = "canary tables without an alembic_version table: not made by canary's migrations"
        fix = "point --db at a canary database or an empty one"
    elif "alembic_version" not in tables:
        detail, fix = "empty: no canary schema yet", f"{_UPGRADE} to create it"
    elif revision is None or revision in _known_revisions():
        detail, fix = f"at revision {revision or 'base'}, this canary needs {head}", _UPGRADE
    else:
        detail = f"at revision {revision}, newer than this canary knows (head {head})"
        fix = "upgrade canary (`pip install -U canary`)"
    return Check("schema", "fail", detail, fix, "database")


def _write_check(engine: Engine, timeout_s: float) -> Check:
    """Insert a cohort row and roll it back: proves write permission and the write lock."""
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                # The store waits 30 s for SQLite's write lock; a doctor should answer sooner.
                conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                    f"PRAGMA busy_timeout={int(timeout_s * 1000)}"
                )
                conn.execution_options(**{SQLITE_IMMEDIATE: True})
            with conn.begin() as transaction:
                if engine.dialect.name == "postgresql":
                    ms = int(timeout_s * 1000)
                    conn.execute(text(f"SET LOCAL lock_timeout = {ms}"))
                    conn.execute(text(f"SET LOCAL statement_timeout = {ms}"))
                conn.execute(
                    insert(CohortRow).values(
                        fingerprint=f"canary-doctor-{uuid.uuid4().hex}", labels={}
                    )
                )
                transaction.rollback()
    except SQLAlchemyError as exc:
        detail = f"cannot write: {_reason(exc, engine.url)}"
        fix = "grant this user INSERT, UPDATE and DELETE on canary's tables (or a writable file)"
        return Check("database write", "fail", detail, fix, "database")
    elapsed_ms = (time.perf_counter() - started) * 1000
    detail = f"an insert works (rolled back, {elapsed_ms:.0f} ms)"
    return Check("database write", "ok", detail, area="database")


def _missing_sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def _server(engine: Engine) -> str:
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(engine.dialect.name, "")
    version = engine.dialect.server_version_info or ()
    return f"{name} {'.'.join(str(part) for part in version)}".strip()


def _reason(exc: SQLAlchemyError, url: URL) -> str:
    """The driver's message on one line, without the password."""
    message = str(getattr(exc, "orig", None) or exc)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    if reason.endswith(":") and len(lines) > 1:  # "Multiple connection attempts failed. …:"
        reason = f"{reason} {lines[1].lstrip('- ')}"
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason


def _known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from canary.store.migrate import migrations_dir

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
