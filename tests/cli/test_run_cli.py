"""The core loop through the CLI: fleet file → suite → real HTTP → every result in SQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from canary.errors import ExitCode
from tests.support.cli import invoke, write_suite
from tests.support.openai_server import FakeOpenAI

SUITE_ROWS = [
    {"id": "hello", "prompt": "Say hello", "params": {"logprobs": True, "top_logprobs": 2}},
    {"id": "flaky", "prompt": "[[fail500:1]] retry me"},
    {"id": "broken", "prompt": "[[notjson]] bad body"},
    {"id": "turn-1", "session": "s", "prompt": "first"},
    {"id": "turn-2", "session": "s", "prompt": "second"},
    {"id": "again", "prompt": "repeat", "repeat": 3},
]


@pytest.fixture
def fleet_file(tmp_path: Path, server: FakeOpenAI) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        f"""
defaults: {{max_retries: 2, backoff_s: 0.01, timeout_s: 5}}
endpoints:
  - name: chat-door
    base_url: {server.base_url}
    flavour: openai-chat
    model: m
    labels: {{route: front-door}}
  - name: pool-a
    base_url: {server.base_url}
    flavour: openai-completions
    model: m
    labels: {{pool: a, route: direct}}
"""
    )
    return path


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    return write_suite(tmp_path / "mini.jsonl", SUITE_ROWS)


def test_run_fills_the_store_and_reads_back(
    any_db_url: str, fleet_file: Path, suite_file: Path
) -> None:
    code, out = invoke(
        "run",
        "--fleet",
        str(fleet_file),
        "--suite",
        str(suite_file),
        "--once",
        "--db",
        any_db_url,
        "--json",
    )
    assert code == 0, out
    summary = json.loads(out)
    per_endpoint = {e["endpoint"]: e for e in summary["endpoints"]}
    assert set(per_endpoint) == {"chat-door", "pool-a"}
    for stats in per_endpoint.values():
        assert stats["sent"] == 8  # 6 probes, one repeated 3 times
        assert stats["errors"] == {"malformed": 1}

    code, out = invoke("runs", "--json", "--db", any_db_url)
    assert code == 0, out
    (run,) = json.loads(out)
    assert run["id"] == summary["run_id"]
    assert run["status"] == "completed"
    assert run["n_results"] == 16 and run["n_errors"] == 2

    from canary.store import open_store

    results = open_store(any_db_url).results_for_run(summary["run_id"])
    assert len(results) == 16
    by_probe = {(r.endpoint, r.probe_id, r.repeat_index): r for r in results}
    hello = by_probe[("pool-a", "hello", 0)]
    assert hello.output_text == "Hello world"
    assert hello.tokens and hello.tokens[0].token == "Hello"
    assert hello.labels["pool"] == "a" and hello.labels["load"] == "probe"
    assert hello.served_by == "fake-pool-a"
    # The fake fails the first attempt at this prompt (whichever endpoint sends it) with a 500.
    flaky = [by_probe[(e, "flaky", 0)] for e in ("pool-a", "chat-door")]
    assert sorted(r.attempts for r in flaky) == [1, 2]
    assert all(r.output_text == "Hello world" for r in flaky)
    assert by_probe[("pool-a", "broken", 0)].error_kind == "malformed"
    turn1, turn2 = by_probe[("chat-door", "turn-1", 0)], by_probe[("chat-door", "turn-2", 0)]
    assert turn1.session_id == turn2.session_id

    code, out = invoke("show", str(hello.id), "--json", "--db", any_db_url)
    assert code == 0, out
    shown = json.loads(out)
    assert shown["output_text"] == "Hello world" and shown["probe_id"] == "hello"

    code, out = invoke("show", str(hello.id), "--db", any_db_url)
    assert code == 0 and "Hello world" in out and "pool=a" in out


def test_rich_summary_table(fleet_file: Path, suite_file: Path, sqlite_url: str) -> None:
    code, out = invoke("run", "-f", str(fleet_file), "--suite", str(suite_file), "--db", sqlite_url)
    assert code == 0, out
    for word in ("endpoint", "sent", "p50", "p95", "pool-a", "malformed 1"):
        assert word in out


def test_select_by_label(fleet_file: Path, suite_file: Path, sqlite_url: str) -> None:
    code, out = invoke(
        "run",
        "-f",
        str(fleet_file),
        "--suite",
        str(suite_file),
        "--select",
        "pool=a",
        "--db",
        sqlite_url,
        "--json",
    )
    assert code == 0, out
    assert [e["endpoint"] for e in json.loads(out)["endpoints"]] == ["pool-a"]


def test_unreachable_endpoint_exits_5_and_stores_error_rows(
    tmp_path: Path, suite_file: Path, sqlite_url: str
) -> None:
    fleet = tmp_path / "down.yaml"
    fleet.write_text(
        "defaults: {max_retries: 0, connect_timeout_s: 1}\n"
        "endpoints:\n  - {name: gone, base_url: 'http://127.0.0.1:1/v1', model: m}\n"
    )
    code, out = invoke("run", "-f", str(fleet), "--suite", str(suite_file), "--db", sqlite_url)
    assert code == ExitCode.ENDPOINT, out
    from canary.store import open_store

    (run,) = open_store(sqlite_url).list_runs()
    assert run.n_results == run.n_errors == 8


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "--suite", "nope-suite"], ExitCode.USAGE, "suite 'nope-suite' not found"),
        (["run", "--suite", "smoke", "-f", "missing.yaml"], ExitCode.USAGE, "file not found"),
        (["show", "999999"], ExitCode.DATA, "no result with id 999999"),
        (["runs", "--db", "mysql://x/y"], ExitCode.DATA, "sqlite"),
        (["runs", "--db", "postgresql://postgres@127.0.0.1:1/x"], ExitCode.DATA, "cannot connect"),
    ],
)
def test_bad_input_is_one_line_and_exit_code(
    args: list[str], code: int, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exit_code, out = invoke(*args)
    assert exit_code == code, out
    error_lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], out


def test_init_and_db_commands(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "canary.yaml"
    code, out = invoke("init", str(config), "--db", sqlite_url)
    assert code == 0, out
    assert config.exists()
    code, out = invoke("init", str(config), "--db", sqlite_url)
    assert code == ExitCode.USAGE and "--force" in out

    code, out = invoke("db", "current", "--json", "--db", sqlite_url)
    status = json.loads(out)
    assert code == 0 and status["up_to_date"] and status["current"] == status["head"]

    code, out = invoke("db", "downgrade", "base", "--db", sqlite_url)
    assert code == 0, out
    code, out = invoke("runs", "--db", sqlite_url)
    assert code == ExitCode.DATA and "canary db upgrade" in out
    code, out = invoke("db", "upgrade", "--db", sqlite_url)
    assert code == 0, out
    code, out = invoke("runs", "--db", sqlite_url, "--json")
    assert code == 0 and json.loads(out) == []


def test_help_documents_exit_codes() -> None:
    code, out = invoke("--help")
    assert code == 0
    assert "Exit codes" in out and "inconclusive" in out
