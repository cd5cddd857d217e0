"""Bad input a new user meets gives one line that says what to fix, and exit 3 or 4.

Each case once ended in a traceback or a misleading message: a non-UTF-8 file, a read-only
database, a selector that rich turned into an emoji, a run that does not exist, a schema from a
newer canary, a base_url that failed only later, per request.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from canary.cli.main import app
from canary.errors import ExitCode
from tests.conftest import PG_ADMIN_URL
from tests.support.cli import write_suite
from tests.support.openai_server import FakeOpenAI

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def one_error_line(result: Result) -> str:
    """The command's only stderr line, which must be an `error:` line (no traceback)."""
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def fleet_file(tmp_path: Path, server: FakeOpenAI) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        f"defaults: {{max_retries: 0, timeout_s: 5}}\n"
        f"endpoints:\n  - {{name: pool-a, base_url: '{server.base_url}', model: m}}\n"
    )
    return path


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    return write_suite(tmp_path / "mini.jsonl", [{"id": "hello", "prompt": "Say hello"}])


# --- files that are not UTF-8 ------------------------------------------------------------------

LATIN1_FLEET = "endpoints:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: caf\xe9}\n"


def test_a_non_utf8_fleet_file_is_one_line_and_exit_3(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_bytes(LATIN1_FLEET.encode("latin-1"))
    offset = LATIN1_FLEET.index("\xe9")
    result = invoke("run", "--fleet", str(fleet), "--suite", "smoke")
    assert result.exit_code == ExitCode.USAGE
    assert one_error_line(result) == (
        f"error: fleet file {fleet} is not UTF-8 text (byte 0xe9 at offset {offset}); "
        "save it as UTF-8"
    )


def test_a_non_utf8_suite_file_is_one_line_and_exit_3(tmp_path: Path) -> None:
    suite = tmp_path / "mine.yaml"
    suite.write_bytes("name: mine\ndescription: r\xe9sum\xe9\ndata: x.jsonl\n".encode("cp1252"))
    result = invoke("run", "--suite", str(suite), "--sim")
    assert result.exit_code == ExitCode.USAGE
    line = one_error_line(result)
    assert f"suite file {suite} is not UTF-8 text (byte 0xe9 at offset 25)" in line


def test_a_non_utf8_daemon_config_is_one_line_and_exit_3(tmp_path: Path) -> None:
    config = tmp_path / "daemon.yaml"
    config.write_bytes(b"fleet: fleet.yaml\n# \xff\xfe\n")
    result = invoke("daemon", "--config", str(config), "--once")
    assert result.exit_code == ExitCode.USAGE
    assert "is not UTF-8 text (byte 0xff at offset 20); save it as UTF-8" in one_error_line(result)


# --- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1:8555/v1", "an IPv6 host goes in brackets"),
        ("http://127.0.0.1:99999/v1", "Port out of range"),
        ("http:///v1", "names no host"),
        ("http://user:pw@host/v1", "holds credentials; put the key in api_key_env"),
    ],
)
def test_a_bad_base_url_is_refused_at_load_naming_file_endpoint_and_key(
    tmp_path: Path, url: str, reason: str
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "endpoints:\n"
        "  - {name: good, base_url: 'http://127.0.0.1:9/v1', model: m}\n"
        f"  - {{name: ipv6-pool, base_url: '{url}', model: m}}\n"
    )
    result = invoke("run", "--fleet", str(fleet), "--suite", "smoke")
    assert result.exit_code == ExitCode.USAGE
    line = one_error_line(result)
    assert line.startswith(f"error: {fleet}: endpoint 'ipv6-pool': endpoints.1.base_url: ")
    assert reason in line


# --- a read-only database ----------------------------------------------------------------------


def read_only(sqlite_url: str) -> str:
    """The same SQLite file opened read-only: SQLite refuses writes even for root."""
    path = sqlite_url.removeprefix("sqlite:///")
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def test_a_read_only_database_is_one_line_and_exit_4_on_every_writer(
    fleet_file: Path, suite_file: Path, sqlite_url: str
) -> None:
    first = invoke("run", "-f", str(fleet_file), "--suite", str(suite_file), "--db", sqlite_url)
    assert first.exit_code == 0, first.output
    ro = read_only(sqlite_url)
    for args in (
        ["run", "-f", str(fleet_file), "--suite", str(suite_file)],
        ["score", "--run", "1"],
        ["baseline", "capture", "healthy", "--run", "1"],
    ):
        result = invoke(*args, "--db", ro)
        assert result.exit_code == ExitCode.DATA, (args, result.output)
        line = one_error_line(result)
        assert "is read-only: attempt to write a readonly database" in line, args
        assert line.endswith("; check file permissions or --db")
    assert invoke("runs", "--db", ro, "--json").exit_code == 0  # reading still works


def test_a_read_only_postgresql_database_is_exit_4(
    fleet_file: Path, suite_file: Path, pg_url: str
) -> None:
    assert invoke("db", "upgrade", "--db", pg_url).exit_code == 0
    ro = pg_url + "?options=-c%20default_transaction_read_only%3Don"
    result = invoke("run", "-f", str(fleet_file), "--suite", str(suite_file), "--db", ro)
    assert result.exit_code == ExitCode.DATA
    line = one_error_line(result)
    assert "is read-only: cannot execute INSERT in a read-only transaction" in line
    assert "not a standby or read-only replica" in line


# --- selectors ---------------------------------------------------------------------------------


def test_a_run_selector_that_is_not_an_integer_is_exit_3_and_no_emoji(sqlite_url: str) -> None:
    result = invoke("compare", "--before", "run:abc", "--after", "run:1", "--db", sqlite_url)
    assert result.exit_code == ExitCode.USAGE
    line = one_error_line(result)
    assert "run ids are integers: run:abc" in line
    assert "\N{INPUT SYMBOL FOR LATIN LETTERS}" not in result.output  # what `:abc:` became


def test_a_run_that_does_not_exist_is_no_such_run(
    fleet_file: Path, suite_file: Path, sqlite_url: str
) -> None:
    first = invoke("run", "-f", str(fleet_file), "--suite", str(suite_file), "--db", sqlite_url)
    assert first.exit_code == 0, first.output
    for args in (
        ["compare", "--before", "run:999999", "--after", "run:1"],
        ["compare", "--before", "run:1", "--after", "run:1,999999"],
        ["baseline", "capture", "b", "--run", "999999"],
    ):
        result = invoke(*args, "--db", sqlite_url)
        assert result.exit_code == ExitCode.DATA, (args, result.output)
        assert one_error_line(result) == (
            "error: no run with id 999999; list runs with `canary runs`"
        )


# --- a schema from a newer canary --------------------------------------------------------------


def test_a_newer_schema_says_upgrade_canary_not_the_database(sqlite_url: str) -> None:
    assert invoke("db", "upgrade", "--db", sqlite_url).exit_code == 0
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    for args in (["db", "current"], ["db", "current", "--json"], ["db", "upgrade"], ["runs"]):
        result = invoke(*args, "--db", sqlite_url)
        assert result.exit_code == ExitCode.DATA, (args, result.output)
        line = one_error_line(result)
        assert "is at revision 9999_from_the_future, newer than this canary" in line, args
        assert "(head " in line and "upgrade canary" in line
        assert "canary db upgrade" not in line


def test_db_downgrade_takes_a_relative_step(sqlite_url: str) -> None:
    assert invoke("db", "upgrade", "--db", sqlite_url).exit_code == 0
    before = json.loads(invoke("db", "current", "--json", "--db", sqlite_url).stdout)
    result = invoke("db", "downgrade", "-1", "--db", sqlite_url)
    assert result.exit_code == 0, result.output
    after = json.loads(invoke("db", "current", "--json", "--db", sqlite_url).stdout)
    assert after["current"] != before["current"] and not after["up_to_date"]


def test_a_driver_error_from_a_damaged_database_is_exit_4_not_a_crash(sqlite_url: str) -> None:
    assert invoke("db", "upgrade", "--db", sqlite_url).exit_code == 0
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("PRAGMA foreign_keys=OFF"))
        conn.execute(text("DROP TABLE runs"))  # a table dropped by hand, the revision intact
    engine.dispose()
    result = invoke("runs", "--db", sqlite_url)
    assert result.exit_code == ExitCode.DATA
    assert one_error_line(result).startswith("error: database error: no such table: runs;")


def test_a_postgresql_user_without_grants_is_exit_4(pg_url: str) -> None:
    assert invoke("db", "upgrade", "--db", pg_url).exit_code == 0
    role = f"canary_nogrant_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        as_role = pg_url.replace("//postgres@", f"//{role}@", 1)
        result = invoke("runs", "--db", as_role)
        assert result.exit_code == ExitCode.DATA
        line = one_error_line(result)
        assert "denies access: permission denied for table" in line
        assert "grant the database user access" in line
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')
