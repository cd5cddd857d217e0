"""The alembic revisions build exactly the ORM schema, and go down and up again cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from canary.errors import StoreError
from canary.store import current_revision, downgrade, head_revision, make_engine, upgrade
from canary.store.migrate import include_name, migrations_dir
from canary.store.models import Base
from canary.store.partitions import is_partition_name
from tests.conftest import PG_ADMIN_URL

REPO = Path(__file__).resolve().parents[2]


def schema_diff(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": include_name}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {t for t in inspect(engine).get_table_names() if not is_partition_name(t)}
    finally:
        engine.dispose()


def snapshot(url: str) -> dict[str, Any]:
    """Everything reflection sees of the canary tables, in a comparable form."""
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        tables = sorted(
            t for t in insp.get_table_names() if t != "alembic_version" and not is_partition_name(t)
        )
        return {
            table: {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"), c.get("identity"))
                    for c in insp.get_columns(table)
                ],
                "pk": insp.get_pk_constraint(table),
                "fks": sorted(
                    (fk["name"], fk["constrained_columns"], fk["referred_table"], fk["options"])
                    for fk in insp.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (i["name"], i["column_names"], i["unique"]) for i in insp.get_indexes(table)
                ),
                "uniques": sorted(
                    (u["name"], u["column_names"]) for u in insp.get_unique_constraints(table)
                ),
            }
            for table in tables
        }
    finally:
        engine.dispose()


@pytest.fixture
def reference_url(any_db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same backend, for `create_all`."""
    if any_db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'reference.db'}"
        return
    import psycopg

    name = f"canary_ref_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{any_db_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_equals_models_then_down_and_up(any_db_url: str) -> None:
    assert current_revision(any_db_url) is None
    upgrade(any_db_url)
    assert current_revision(any_db_url) == head_revision()
    assert schema_diff(any_db_url) == []

    downgrade(any_db_url, "base")
    assert table_names(any_db_url) == {"alembic_version"}
    assert current_revision(any_db_url) is None

    upgrade(any_db_url, "head")
    assert schema_diff(any_db_url) == []
    # Every revision steps down and back up on its own.
    for _ in range(len(REVISIONS)):
        downgrade(any_db_url, "-1")
    assert table_names(any_db_url) == {"alembic_version"}
    for revision in REVISIONS:
        upgrade(any_db_url, revision)
        assert current_revision(any_db_url) == revision
    assert schema_diff(any_db_url) == []


#: The revision chain, oldest first.
REVISIONS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]


def test_revision_chain_is_linear_and_listed() -> None:
    files = sorted(p.name[:4] for p in (migrations_dir() / "versions").glob("[0-9]*.py"))
    assert files == REVISIONS
    assert head_revision() == REVISIONS[-1]


def test_migrated_schema_reflects_like_create_all(any_db_url: str, reference_url: str) -> None:
    """Stricter than autogenerate: names, FK options and defaults as the database reports them."""
    upgrade(any_db_url)
    engine = create_engine(reference_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    migrated, reference = snapshot(any_db_url), snapshot(reference_url)
    assert sorted(migrated) == sorted(Base.metadata.tables)
    assert migrated == reference


def test_unknown_revision_is_a_store_error(sqlite_url: str) -> None:
    with pytest.raises(StoreError, match=r"cannot migrate .* to 'nope'"):
        upgrade(sqlite_url, "nope")


def test_migrations_found_in_checkout() -> None:
    assert migrations_dir() == REPO / "alembic"
    assert (migrations_dir() / "versions" / "0001_initial_schema.py").is_file()


def test_alembic_command_line_uses_canary_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "CANARY_DATABASE_URL": url}
    alembic = Path(sys.executable).with_name("alembic")
    done = subprocess.run(
        [str(alembic), "-c", "alembic.ini", "upgrade", "head"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert current_revision(url) == head_revision()
