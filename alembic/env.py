"""Alembic environment for canary's store.

`canary.store.migrate` passes an open connection in `config.attributes["connection"]`; the
`alembic` command line gets its URL from `sqlalchemy.url` in alembic.ini, else from
`CANARY_DATABASE_URL`, else ./canary.db (the same rules as `canary --db`).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from canary.store.engine import SQLITE_IMMEDIATE, make_engine, resolve_database_url
from canary.store.migrate import include_name
from canary.store.models import Base

config = context.config
target_metadata = Base.metadata

#: Key of the PostgreSQL advisory lock that serialises concurrent migrators ("canary" in ASCII).
MIGRATION_LOCK = 0x63616E617279

if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return resolve_database_url(config.get_main_option("sqlalchemy.url") or None)


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`) instead of running it."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Two processes opening an empty database at once must not both create the tables;
        # the loser waits here, then finds the schema at head and does nothing.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the caller's connection, or one of our own, in a single transaction."""
    shared = config.attributes.get("connection")
    if shared is not None:
        _run(shared)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            connection.execution_options(**{SQLITE_IMMEDIATE: True})
            with connection.begin():
                _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
