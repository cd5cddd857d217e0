"""A detector shipped as a separate package reaches every part of canary with no edit to it.

`canary_plugin_demo/` is a real installable package (its own ``pyproject.toml`` declares the
``canary.detectors`` entry point). The fixture installs it the way an installer lays it out: a
``.dist-info`` with that entry point, next to the package on the path of a fresh interpreter,
so the registries of this test session are never touched. The interpreter runs `scenario.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "canary_plugin_demo"
ROOT = HERE.parents[1]


def install(site: Path) -> None:
    """``site`` as an installer leaves it: the package's metadata and its entry points."""
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n",
        encoding="utf-8",
    )
    groups = meta["entry-points"]
    (dist / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
            for group, entries in groups.items()
        ),
        encoding="utf-8",
    )
    (dist / "top_level.txt").write_text("canary_plugin_demo\n", encoding="utf-8")


@pytest.fixture(scope="session")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    site = tmp_path_factory.mktemp("site")
    install(site)
    work = tmp_path_factory.mktemp("plugin-run")
    path = os.pathsep.join([str(site), str(PROJECT), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-m", "tests.plugins.scenario", str(work)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_plugin_declares_its_policy_and_probe_kind(seen: dict[str, Any]) -> None:
    assert seen["policy"] == {
        "metric": "shouted",
        "kind": "rate",
        "direction": "higher_is_worse",
        "margin": 0.01,
        "relative_margin": 0.0,
        "reason": "",
        "critical": False,
    }
    assert seen["scored"] == 2000  # probes of its own kind `shout` loaded and were scored


def test_the_plugin_metric_is_baselined_and_compared(seen: dict[str, Any]) -> None:
    assert seen["baseline"]["kind"] == "rate"
    assert (seen["baseline"]["k"], seen["baseline"]["n"]) == (0, 2000)
    assert seen["verdicts"]["shouted"] == "regression"
    assert seen["gate"] == "regression"
    assert seen["evidence"]


def test_the_plugin_metric_is_alerted_on(seen: dict[str, Any]) -> None:
    assert seen["monitored"] == ["shouted"]
    assert seen["monitor"], "a CUSUM monitor is built from the baseline's counts"


def test_the_plugin_metric_is_reported_with_its_explanation(seen: dict[str, Any]) -> None:
    assert "shouted" in seen["report_metrics"]
    assert seen["report_reference"] == "baseline healthy"
    assert seen["report_cells"] == ["regressed"]
    assert seen["samples"]
    sample = seen["samples"][0]
    assert sample["spans"] == [[0, len("HELLO THERE FRIEND"), "shouted"]]
    assert sample["lines"] == ["100% of the letters are upper case"]
