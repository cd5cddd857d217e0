"""Which database canary opens, and how the engine is tuned."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from canary.errors import StoreError
from canary.store import make_engine, resolve_database_url
from canary.store.engine import DEFAULT_URL, dumps_json, redact


def test_precedence_explicit_env_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_DATABASE_URL", "sqlite:///env.db")
    assert resolve_database_url("sqlite:///cli.db", "sqlite:///cfg.db") == "sqlite:///cli.db"
    assert resolve_database_url(None, "sqlite:///cfg.db") == "sqlite:///env.db"
    monkeypatch.delenv("CANARY_DATABASE_URL")
    assert resolve_database_url(None, "sqlite:///cfg.db") == "sqlite:///cfg.db"
    assert resolve_database_url() == DEFAULT_URL == "sqlite:///canary.db"


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:p@db:5432/canary",
        "postgres://u:p@db:5432/canary",
        "postgresql+psycopg://u:p@db:5432/canary",
    ],
)
def test_postgres_urls_use_psycopg3(raw: str) -> None:
    assert resolve_database_url(raw) == "postgresql+psycopg://u:p@db:5432/canary"


@pytest.mark.parametrize(
    "raw", ["mysql://u:secret@db/canary", "not a url", "postgresql+psycopg2://u:secret@db/c"]
)
def test_unsupported_url_says_what_to_write(raw: str) -> None:
    with pytest.raises(StoreError) as caught:
        resolve_database_url(raw)
    message = str(caught.value)
    assert "--db" in message and ("sqlite:///canary.db" in message or "psycopg 3" in message)
    assert "secret" not in message and "\n" not in message


def test_redact_hides_password() -> None:
    assert redact("postgresql+psycopg://u:hunter2@db/c") == "postgresql+psycopg://u:***@db/c"


def test_sqlite_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout", "synchronous")
        }
    engine.dispose()
    assert pragma == {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "synchronous": 1,
    }


def test_sqlite_ddl_is_transactional(sqlite_url: str) -> None:
    """A failed migration must leave nothing behind, so DDL runs inside our BEGIN."""
    engine = make_engine(sqlite_url)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        raise RuntimeError
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM sqlite_master").all() == []
    engine.dispose()


def test_json_survives_what_postgres_rejects() -> None:
    assert dumps_json({"a": "สวัสดี", "b": 1.5}) == '{"a": "สวัสดี", "b": 1.5}'
    assert dumps_json({"lp": float("-inf"), "t": "a\x00b"}) == '{"lp": null, "t": "a\ufffdb"}'
