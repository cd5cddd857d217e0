"""docs/report.md cannot rot: its `canary report` options exist, its Chromium command uses the
flags the browser tests run with, and the exit code it documents for bad arguments holds."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer
from typer.testing import CliRunner

from canary.cli.report import report
from tests.reports import browser

DOC = (Path(__file__).resolve().parents[2] / "docs" / "report.md").read_text(encoding="utf-8")
LINES = [
    line.split(" #", 1)[0].strip()
    for block in re.findall(r"```bash\n(.*?)```", DOC, flags=re.S)
    for line in block.splitlines()
    if line.strip()
]


def test_documented_report_options_exist() -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("report")(report)
    help_text = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "200"}).output
    commands = [line for line in LINES if line.startswith("canary report")]
    assert len(commands) >= 5
    for line in commands:
        for option in (w.split("=")[0] for w in shlex.split(line) if w.startswith("--")):
            assert option in help_text, f"docs/report.md uses {option}; `canary report` has none"


def test_documented_chromium_command_is_the_tested_one(tmp_path: Path) -> None:
    (line,) = [line for line in LINES if line.startswith("chromium ")]
    documented = {w.split("=")[0] for w in shlex.split(line) if w.startswith("--")}
    tested = {w.split("=")[0] for w in browser._base(tmp_path)[1:] if w.startswith("--")}
    assert documented - {"--screenshot", "--window-size"} <= tested


def test_bad_window_is_a_usage_error(sqlite_url: str) -> None:
    from canary.cli.main import CanaryGroup

    app = typer.Typer(cls=CanaryGroup)
    app.callback()(lambda: None)
    app.command("report")(report)
    result = CliRunner().invoke(app, ["report", "--since", "yesterday", "--db", sqlite_url])
    assert result.exit_code == 3 and "neither a duration" in result.output
