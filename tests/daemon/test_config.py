"""Daemon config files: the shipped example is valid; mistakes are one line naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.daemon.config import load_daemon_config
from canary.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_the_example_config_loads() -> None:
    config, base = load_daemon_config(REPO / "config" / "daemon.example.yaml")
    assert base == REPO / "config"
    assert [s.name for s in config.schedules] == [
        "topk-pools",
        "routing-front-door",
        "script-and-code",
    ]
    loads = config.loads_of(config.schedules[0])
    assert [(x.name, x.concurrency) for x in loads] == [("probe", 1), ("burst-c8", 8)]
    assert config.alerts is not None and config.alerts.baseline == "healthy"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sim: true\nschedules: []\n", "schedules"),
        ("schedules: [{name: a, suite: topk, every: 1m}]\n", "give 'fleet: PATH'"),
        ("sim: true\nschedules: [{name: a, suite: topk}]\n", "exactly one of 'every' or 'cron'"),
        (
            "sim: true\nschedules: [{name: a, suite: topk, every: 1m, loads: [c64]}]\n",
            "unknown load 'c64'",
        ),
        ("sim: true\nschedules: [{name: a, suite: topk, every: 1m, evry: 2m}]\n", "unknown key"),
        (
            "sim: true\nschedules: [{name: a, suite: topk, every: 1m}]\n"
            "sinks: [{type: webhook, url: 'http://x'}, {type: webhook, url: 'http://y'}]\n",
            "appears twice",
        ),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "daemon.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_daemon_config(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(path) in str(info.value)


def write_http_config(tmp_path: Path, http: dict[str, object], **extra: object) -> Path:
    import yaml

    path = tmp_path / "daemon.yaml"
    config = {"sim": True, "schedules": [{"name": "a", "suite": "topk", "every": "1m"}]}
    path.write_text(yaml.safe_dump(config | {"http": http} | extra))
    return path


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "canary.internal"])
def test_a_reachable_control_endpoint_without_a_token_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    from typer.testing import CliRunner

    from canary.cli.main import app
    from canary.errors import ExitCode

    monkeypatch.delenv("CANARY_CHANGE_TOKEN", raising=False)
    path = write_http_config(tmp_path, {"host": host, "port": 0})
    with pytest.raises(ConfigError, match=r"not set; export a token in \$CANARY_CHANGE_TOKEN"):
        load_daemon_config(path)

    result = CliRunner().invoke(
        app, ["daemon", "--config", str(path), "--once", "--log-level", "warning"]
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "CANARY_CHANGE_TOKEN" in lines[0] and host in lines[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_needs_no_token_and_a_token_opens_any_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.delenv("CANARY_CHANGE_TOKEN", raising=False)
    config, _ = load_daemon_config(write_http_config(tmp_path, {"host": host}))
    assert config.http is not None and config.http.host == host

    monkeypatch.setenv("OPS_TOKEN", "tok-1234")
    wide = write_http_config(tmp_path, {"host": "0.0.0.0", "token_env": "OPS_TOKEN"})
    assert load_daemon_config(wide)[0].http is not None


def test_every_secret_variable_the_config_names_is_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canary.sanitize import scrub_secrets, secret_envs

    sinks = [
        {"type": "webhook", "name": "hook", "url_env": "TEST_HOOK_URL"},
        {"type": "slack", "url_env": "TEST_SLACK_URL", "headers_env": {"X-Auth": "TEST_AUTH"}},
    ]
    http = {"token_env": "TEST_CONTROL_TOKEN"}
    load_daemon_config(write_http_config(tmp_path, http, sinks=sinks))
    assert {"TEST_HOOK_URL", "TEST_SLACK_URL", "TEST_AUTH", "TEST_CONTROL_TOKEN"} <= secret_envs()
    assert "CANARY_CHANGE_TOKEN" in secret_envs()
    monkeypatch.setenv("TEST_AUTH", "Bearer hunter2-xyz")
    assert scrub_secrets("echoed: Bearer hunter2-xyz!") == "echoed: ***!"


def test_catch_up_is_per_schedule_or_daemon_wide(tmp_path: Path) -> None:
    path = tmp_path / "daemon.yaml"
    path.write_text(
        "sim: true\ncatch_up: latest\nschedules:\n"
        "  - {name: a, suite: topk, every: 1m}\n"
        "  - {name: b, suite: topk, every: 1m, catch_up: all}\n"
    )
    config, _ = load_daemon_config(path)
    assert [config.catch_up_of(s) for s in config.schedules] == ["latest", "all"]
    path.write_text("sim: true\nschedules: [{name: a, suite: topk, every: 1m, catch_up: some}]\n")
    with pytest.raises(ConfigError, match=r"schedules\.0\.catch_up"):
        load_daemon_config(path)
