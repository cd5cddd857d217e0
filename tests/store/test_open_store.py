"""open_store creates a fresh database and refuses any schema it cannot use, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from canary.errors import ExitCode, StoreError
from canary.store import current_revision, downgrade, head_revision, open_store, upgrade

REPO = Path(__file__).resolve().parents[2]


def test_fresh_sqlite_file_is_created_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "new" / "canary.db"
    path.parent.mkdir()
    store = open_store(f"sqlite:///{path}")
    assert path.is_file()
    assert current_revision(store.url) == head_revision()
    assert store.count_results() == 0


def test_default_url_comes_from_the_environment(tmp_path: Path) -> None:
    # conftest points CANARY_DATABASE_URL at tmp_path/canary.db
    store = open_store()
    assert store.url == f"sqlite:///{tmp_path / 'canary.db'}"
    assert (tmp_path / "canary.db").is_file()


def test_config_url_is_used_when_nothing_else_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CANARY_DATABASE_URL")
    url = f"sqlite:///{tmp_path / 'from-config.db'}"
    assert open_store(config_url=url).url == url


def test_empty_database_without_auto_create(sqlite_url: str) -> None:
    with pytest.raises(StoreError, match="is empty; run `canary db upgrade`"):
        open_store(sqlite_url, auto_create=False)


def test_database_at_base_needs_upgrade(any_db_url: str) -> None:
    upgrade(any_db_url)
    downgrade(any_db_url, "base")
    with pytest.raises(StoreError) as caught:
        open_store(any_db_url)
    message = str(caught.value)
    assert f"is at schema revision base but this canary needs {head_revision()}" in message
    assert message.endswith("run `canary db upgrade`")
    assert caught.value.exit_code == ExitCode.DATA


def test_older_revision_needs_upgrade(any_db_url: str) -> None:
    """A database left at the first revision by an older canary."""
    upgrade(any_db_url, "0001")
    with pytest.raises(StoreError, match=f"revision 0001 but this canary needs {head_revision()}"):
        open_store(any_db_url)
    upgrade(any_db_url)
    assert open_store(any_db_url).count_results() == 0


def test_newer_revision_says_upgrade_canary(any_db_url: str) -> None:
    upgrade(any_db_url)
    engine = create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"revision 0099, newer than this canary knows .*pip"):
        open_store(any_db_url)


def test_tables_without_alembic_version_are_refused(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE results (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StoreError, match="has canary tables but no alembic_version"):
        open_store(sqlite_url)


def test_unrelated_tables_do_not_block_creation(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    assert current_revision(open_store(sqlite_url).url) == head_revision()


def test_unreachable_postgres_is_one_line() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://canary:s3cret@127.0.0.1:1/canary")
    message = str(caught.value)
    assert message.startswith(
        "cannot connect to postgresql+psycopg://canary:***@127.0.0.1:1/canary"
    )
    assert "is the server running?" in message and "--db" in message
    assert "\n" not in message and "s3cret" not in message


def test_unopenable_sqlite_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot connect to sqlite:///.*no-such-dir"):
        open_store(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")


def test_current_revision_of_unreachable_database() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        current_revision("postgresql+psycopg://postgres@127.0.0.1:1/x")


@pytest.mark.parametrize("threads", [False, True], ids=["processes", "threads"])
def test_concurrent_first_opens_create_the_schema_once(pg_url: str, threads: bool) -> None:
    """Several daemons (or threads) starting against one empty PostgreSQL database at once."""
    if threads:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: open_store(pg_url), range(4)))
    else:
        code = "import sys; from canary.store import open_store; open_store(sys.argv[1])"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [
            subprocess.Popen([sys.executable, "-c", code, pg_url], env=env, stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        errors = [p.communicate(timeout=120)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert current_revision(pg_url) == head_revision()
