"""Schema revisions through alembic, driven from code so nothing depends on the working directory.

`open_store` is the one door to the database: it connects, creates a fresh database on first
use, and refuses a schema that is older or newer than this canary's migrations.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DBAPIError

from canary.errors import StoreError
from canary.store.engine import (
    SQLITE_IMMEDIATE,
    make_engine,
    redact,
    refused_write,
    resolve_database_url,
)
from canary.store.models import Base
from canary.store.partitions import is_partition_name

if TYPE_CHECKING:
    from canary.store.repository import Store

_CANARY_TABLES = frozenset(Base.metadata.tables)
# alembic's `context` and `op` are module-level proxies, so two migrations in one process
# must not overlap; other processes are kept out by a database lock in env.py.
_ALEMBIC_LOCK = threading.Lock()


def include_name(name: str | None, type_: str, parent_names: object = None) -> bool:
    """alembic's `include_name` hook: schema comparisons skip the monthly partitions, which
    the ORM does not declare (it declares the partitioned tables)."""
    return not (type_ == "table" and is_partition_name(name))


def migrations_dir() -> Path:
    """The alembic scripts: `canary/_migrations` in a wheel, `<repo>/alembic` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_migrations", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise StoreError(
        f"canary's migration scripts are missing (looked in {package / '_migrations'} and "
        f"{package.parent / 'alembic'}); reinstall canary"
    )


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this canary knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migration scripts in {migrations_dir()}; reinstall canary")
    return head


@contextmanager
def _connect(engine: Engine, *, write: bool = False) -> Iterator[Connection]:
    """A connection in a transaction; connection failures become one-line StoreErrors."""
    try:
        connection = engine.connect()
    except DBAPIError as exc:
        refused = refused_write(exc, engine.url)
        if refused is not None:
            raise refused from None
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreError(
            f"cannot connect to {redact(engine.url)}: {reason}; is the server running? "
            "check --db or CANARY_DATABASE_URL"
        ) from None
    with connection:
        if write:
            connection.execution_options(**{SQLITE_IMMEDIATE: True})
        with connection.begin():
            yield connection


def _migrate(engine: Engine, revision: str, *, up: bool) -> None:
    with _ALEMBIC_LOCK, _connect(engine, write=True) as connection:
        config = _config(connection)
        check_known_revision(
            MigrationContext.configure(connection).get_current_revision(), redact(engine.url)
        )
        try:
            if up:
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
        except CommandError as exc:
            raise StoreError(
                f"cannot migrate {redact(engine.url)} to {revision!r}: {exc}; "
                "use a revision id, 'head', 'base' or a step like '-1' (see `canary db current`)"
            ) from None


def known_revisions() -> frozenset[str]:
    """Every schema revision this canary's migrations know."""
    scripts = ScriptDirectory.from_config(_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def check_known_revision(revision: str | None, where: str) -> None:
    """Refuse a database whose revision this canary does not know: a newer canary made it.

    `canary db upgrade` cannot help there (alembic fails on the unknown id), so the message
    says to upgrade canary instead.
    """
    if revision is None or revision in known_revisions():
        return
    raise StoreError(
        f"the database {where} is at revision {revision}, newer than this canary knows "
        f"(head {head_revision()}); upgrade canary (`pip install -U canary`)"
    )


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`, creating it if empty."""
    engine = make_engine(url)
    try:
        _migrate(engine, revision, up=True)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` (an id, "-1", or "base": drop all)."""
    engine = make_engine(url)
    try:
        _migrate(engine, revision, up=False)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The schema revision of the database at `url`; None when it has none (empty or base)."""
    engine = make_engine(url)
    try:
        with _connect(engine) as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def open_store(
    url: str | None = None, *, config_url: str | None = None, auto_create: bool = True
) -> Store:
    """The store at `url` (`--db`) or wherever `resolve_database_url` points, schema checked.

    An empty database is migrated to head when `auto_create` (so ./canary.db appears on first
    use); any other mismatch is an error that says which command fixes it.
    """
    from canary.store.repository import Store

    resolved = resolve_database_url(url, config_url)
    engine = make_engine(resolved)
    try:
        _check_schema(engine, auto_create=auto_create)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, resolved)


SchemaState = Literal["at_head", "empty", "foreign", "behind", "ahead"]
"""What a database's schema is to this canary: at its head revision; empty (no canary schema
yet); foreign (canary's tables without alembic's, made by something else); behind (an older
revision, `canary db upgrade` fixes it); ahead (a revision a newer canary made)."""


@dataclass(frozen=True)
class SchemaStatus:
    """A database's schema revision judged against this canary's migrations."""

    state: SchemaState
    revision: str | None
    """The stored revision; None when the database has none (empty or at base)."""
    head: str
    """The newest revision this canary knows."""


def schema_status(tables: Iterable[str], revision: str | None) -> SchemaStatus:
    """The one decision on a schema, from its table names and alembic revision: `open_store`
    turns it into an error, `canary doctor` into a check."""
    names = set(tables)
    head = head_revision()
    managed = "alembic_version" in names
    state: SchemaState
    if not managed and names & _CANARY_TABLES:
        state = "foreign"
    elif not managed:
        state = "empty"
    elif revision == head:
        state = "at_head"
    elif revision is None or revision in known_revisions():
        state = "behind"
    else:
        state = "ahead"
    return SchemaStatus(state, revision, head)


def read_schema_status(connection: Connection) -> SchemaStatus:
    """`schema_status` of the database behind `connection`."""
    tables = inspect(connection).get_table_names()
    return schema_status(tables, MigrationContext.configure(connection).get_current_revision())


def _check_schema(engine: Engine, *, auto_create: bool) -> None:
    where = redact(engine.url)
    with _connect(engine) as connection:
        status = read_schema_status(connection)
    if status.state == "foreign":
        raise StoreError(
            f"database {where} has canary tables but no alembic_version table: it was not made "
            "by canary's migrations; point --db at a canary database or an empty one"
        )
    if status.state == "empty":
        if not auto_create:
            raise StoreError(f"database {where} is empty; run `canary db upgrade` to create it")
        _migrate(engine, "head", up=True)
        return
    if status.state == "at_head":
        return
    check_known_revision(status.revision, where)
    raise StoreError(
        f"database {where} is at schema revision {status.revision or 'base'} but this canary "
        f"needs {status.head}; run `canary db upgrade`"
    )
