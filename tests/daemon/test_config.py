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
