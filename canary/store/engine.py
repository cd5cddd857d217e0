"""Which database, and an engine tuned for it (SQLite for one machine, PostgreSQL for a fleet)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError

from canary.errors import StoreError

#: Environment variable that names the database when `--db` is not given.
ENV_VAR = "CANARY_DATABASE_URL"
#: Where the store lives when nothing names one: a file in the working directory.
DEFAULT_URL = "sqlite:///canary.db"

#: Execution option that makes a SQLite transaction take the write lock at BEGIN.
SQLITE_IMMEDIATE = "canary_sqlite_immediate"

_EXAMPLES = "write e.g. 'sqlite:///canary.db' or 'postgresql://user@host:5432/canary'"


def resolve_database_url(explicit: str | None = None, config_url: str | None = None) -> str:
    """The store URL: `--db`, then `CANARY_DATABASE_URL`, then the fleet config, then ./canary.db.

    `postgresql://` and `postgres://` become `postgresql+psycopg://` (psycopg 3 is the driver we
    ship), so users can paste the URL their other tools use.
    """
    for source, raw in (
        ("--db", explicit),
        (ENV_VAR, os.environ.get(ENV_VAR)),
        ("database_url in the fleet config", config_url),
    ):
        if raw and raw.strip():
            return _normalise(raw.strip(), source)
    return DEFAULT_URL


def _normalise(raw: str, source: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            raw = "postgresql+psycopg://" + raw[len(prefix) :]
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreError(f"{source}: {raw!r} is not a database URL; {_EXAMPLES}") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"{source}: {redact(url)} is neither SQLite nor PostgreSQL, the databases canary "
            f"supports; {_EXAMPLES}"
        )
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
        raise StoreError(
            f"{source}: driver {url.get_driver_name()!r} in {redact(url)} is not one canary "
            "ships; write 'postgresql://…' (canary uses psycopg 3)"
        )
    return url.render_as_string(hide_password=False)


def redact(url: str | URL) -> str:
    """The URL with its password replaced by `***`, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str) -> Engine:
    """An engine for `url`: SQLite tuned for concurrent readers and crash safety, PG pre-pinged.

    SQLite: foreign keys on, WAL (readers never block the writer), a 30 s busy timeout, and
    `synchronous=NORMAL` (safe in WAL: a crash loses at most the last commits, never corrupts).
    The driver's implicit transactions are replaced by an explicit BEGIN so DDL is transactional
    (a failed migration leaves nothing half-done) and writers can ask for BEGIN IMMEDIATE.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, json_serializer=dumps_json)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            json_serializer=dumps_json,
            connect_args={"connect_timeout": 10},
        )
    event.listen(engine, "handle_error", _on_error)
    return engine


def refused_write(error: BaseException, url: str | URL | None) -> StoreError | None:
    """The one-line `StoreError` for a database that refuses writes, or None for other errors.

    A read-only SQLite file (or `?mode=ro`), a PostgreSQL hot standby or read-only transaction,
    and a user without write grants all fail deep inside a write with a driver error and a
    traceback; on-call needs to hear "read-only" and where to look.
    """
    where = redact(url) if url is not None else "(unknown URL)"
    orig = getattr(error, "orig", None) or error
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    name = str(getattr(orig, "sqlite_errorname", ""))
    state = str(getattr(orig, "sqlstate", "") or "")
    if name.startswith("SQLITE_READONLY") or "readonly database" in first:
        return StoreError(f"database {where} is read-only: {first}; check file permissions or --db")
    if state == "25006":  # read_only_sql_transaction: a hot standby or a read-only default
        return StoreError(
            f"database {where} is read-only: {first}; point --db at the primary, "
            "not a standby or read-only replica"
        )
    if state == "42501":
        return StoreError(
            f"database {where} denies access: {first}; grant the database user access to "
            "canary's tables or check --db"
        )
    return None


def _on_error(context: ExceptionContext) -> None:
    # Rewritten here, at the engine, so every write path (run, score, baselines, the daemon)
    # says the same thing instead of each catching driver errors.
    url = context.engine.url if context.engine is not None else None
    mapped = refused_write(context.original_exception, url)
    if mapped is not None:
        raise mapped from None


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see _sqlite_on_begin
    # SQL math that PostgreSQL has built in and SQLite builds may lack (histogram binning).
    dbapi_connection.create_function("floor", 1, _floor, deterministic=True)
    dbapi_connection.create_function("ln", 1, _ln, deterministic=True)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _floor(x: float | None) -> int | None:
    return None if x is None else math.floor(x)


def _ln(x: float | None) -> float | None:
    return None if x is None or x <= 0 else math.log(x)


def _sqlite_on_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY when
    # another process committed in between (the busy timeout does not apply); writers take the
    # lock up front instead.
    immediate = conn.get_execution_options().get(SQLITE_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def dumps_json(value: Any) -> str:
    """JSON for both backends: UTF-8 kept readable, and values PostgreSQL would reject fixed.

    PostgreSQL refuses NaN/Infinity and the NUL character in JSON; a broken endpoint can return
    either, and one bad result must not lose its whole batch. Non-finite floats become null and
    NUL becomes U+FFFD. The common path costs one `json.dumps`.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return dumps_json(_sanitise(value))
    if "\\u0000" in text:
        return json.dumps(_sanitise(value), ensure_ascii=False, allow_nan=False)
    return text


def _sanitise(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_sanitise(k): _sanitise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitise(v) for v in value]
    return value
