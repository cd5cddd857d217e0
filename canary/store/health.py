"""Is the database there, at this canary's schema, and writable: the checks behind `canary
doctor` and the daemon's `/healthz`, answered as values.

Nothing here changes the database: a missing SQLite file is reported, not created (as
`open_store` would), and the write probe's insert is rolled back.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from canary.store.engine import SQLITE_IMMEDIATE, make_engine, redact
from canary.store.migrate import SchemaStatus, read_schema_status
from canary.store.models import CohortRow
from canary.store.repository import Store

DatabaseError = SQLAlchemyError
"""What a store call raises when the database itself fails (unreachable, refused, timed out):
callers that must survive an outage catch this, never the driver's own types."""


@dataclass(frozen=True)
class DatabaseProbe:
    """What one connection to the database showed."""

    where: str
    """The URL with its password hidden."""
    missing_file: Path | None = None
    """The SQLite file that does not exist (nothing else was tried)."""
    error: str | None = None
    """Why it cannot connect, on one line, without the password."""
    elapsed_ms: float = 0.0
    """Connect and ``SELECT 1``."""
    server: str = ""
    """``PostgreSQL 16.2``, ``SQLite 3.45.1``."""
    schema: SchemaStatus | None = None

    @property
    def reachable(self) -> bool:
        return self.missing_file is None and self.error is None


@dataclass(frozen=True)
class WriteProbe:
    """A rolled-back insert: can this user write, and take the write lock in time?"""

    error: str | None
    """Why the insert failed, on one line; None when it worked."""
    elapsed_ms: float


def bounded_store(url: str, timeout_s: float) -> Store:
    """The store at `url` without the schema check of `open_store`, with PostgreSQL connects
    bounded by `timeout_s`: a doctor must answer even when the server does not."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        seconds = max(2, math.ceil(timeout_s))  # libpq reads connect_timeout below 2 s as 2

        @event.listens_for(engine, "do_connect")
        def _bounded(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            params["connect_timeout"] = seconds

    return Store(engine, url)


def ping(store: Store) -> None:
    """``SELECT 1``; raises `DatabaseError` when the database does not answer."""
    with store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def reachable(store: Store) -> bool:
    """Whether the database answers at all (a refused statement is not an outage)."""
    try:
        ping(store)
    except SQLAlchemyError:
        return False
    return True


def probe_database(store: Store) -> DatabaseProbe:
    """Connect once: reachability, round-trip time, server version and schema status."""
    engine = store.engine
    where = redact(engine.url)
    missing = _missing_sqlite_file(engine.url)
    if missing is not None:
        return DatabaseProbe(where, missing_file=missing)
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            elapsed_ms = (time.perf_counter() - started) * 1000
            schema = read_schema_status(conn)
    except SQLAlchemyError as exc:
        return DatabaseProbe(where, error=_reason(exc, engine.url))
    return DatabaseProbe(where, elapsed_ms=elapsed_ms, server=_server(store), schema=schema)


def probe_write(store: Store, timeout_s: float) -> WriteProbe:
    """Insert a cohort row and roll it back: proves write permission and the write lock."""
    engine = store.engine
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
        return WriteProbe(_reason(exc, engine.url), (time.perf_counter() - started) * 1000)
    return WriteProbe(None, (time.perf_counter() - started) * 1000)


def _missing_sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def _server(store: Store) -> str:
    dialect = store.engine.dialect
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(dialect.name, "")
    version = dialect.server_version_info or ()
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
