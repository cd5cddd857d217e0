"""No failure borrows a verdict's exit code: bugs exit 70, Ctrl-C 130, usage errors 3.

A CI gate reads 1 as "regression" and 2 as "inconclusive", so a crash, an interrupt or a typo in
the arguments must each say so in one line and exit with a code of their own. The crash cases
run the real entry point in a subprocess, with one extra command registered on the real app (the
way a plugin adds one), so the real exit status and stderr are checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli.main import app
from canary.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]

# The real app and entry point, plus a command that fails the way a canary bug would.
SCRIPT = """
import logging, os, sys
from canary.cli.main import app, main

@app.command("misbehave")
def misbehave(kind: str) -> None:
    if kind == "value":
        raise ValueError("the detector returned 3 values\\nsecond line")
    if kind == "markup":
        raise RuntimeError("[bold red]gate: PASS[/] :fire:")
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "flood":
        for _ in range(200_000):
            print("x" * 100)
    if kind == "log":
        from canary.config import load_fleet
        load_fleet(os.environ["FLEET"])
        logging.getLogger("httpx").warning("retrying with key %s", os.environ["SECRET_KEY"])

main()
"""


def canary(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "CANARY_DEBUG"}
    full_env.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def test_an_unexpected_exception_is_one_line_and_exit_70() -> None:
    done = canary("misbehave", "value")
    assert done.returncode == ExitCode.INTERNAL == 70
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: unexpected ValueError: the detector returned 3 values;")
    assert "second line" not in line
    assert (
        "this is a canary bug" in line
        and "rerun as `canary --debug COMMAND …` for the traceback" in line
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--debug", "misbehave", "value"), {}), (("misbehave", "value"), {"CANARY_DEBUG": "1"})],
)
def test_debug_prints_the_traceback_and_still_exits_70(
    args: tuple[str, ...], env: dict[str, str]
) -> None:
    done = canary(*args, env=env)
    assert done.returncode == ExitCode.INTERNAL
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert ", in misbehave\n" in done.stderr  # the frame where the bug is
    assert "ValueError: the detector returned 3 values\nsecond line" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: unexpected ValueError:") and "traceback is above" in last


def test_an_error_message_never_acts_as_markup_or_emoji() -> None:
    done = canary("misbehave", "markup")
    assert done.returncode == ExitCode.INTERNAL
    (line,) = done.stderr.strip().splitlines()
    assert "[bold red]gate: PASS[/] :fire:" in line and "\N{FIRE}" not in line


def test_ctrl_c_is_one_line_and_exit_130() -> None:
    done = canary("misbehave", "interrupt")
    assert done.returncode == ExitCode.INTERRUPTED == 130
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: interrupted")


def test_a_reader_that_leaves_early_is_not_a_regression() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "misbehave", "flood"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(1000).startswith(b"xxx")
        proc.stdout.close()  # `| head` exits
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    assert code == ExitCode.BROKEN_PIPE == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


def test_library_log_lines_have_configured_keys_scrubbed(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "endpoints:\n"
        "  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m, api_key_env: TEST_KEY_A}\n"
    )
    key = "sk-test-0123456789abcdef"
    done = canary(
        "misbehave",
        "log",
        env={"FLEET": str(fleet), "TEST_KEY_A": key, "SECRET_KEY": key},
    )
    assert done.returncode == 0, done.stderr
    assert key not in done.stderr
    assert "WARNING httpx: retrying with key ***" in done.stderr


runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["no-such-command"],
        ["run", "--no-such-option"],
        ["run", "--suite", "smoke", "--concurrency", "0"],
        ["show", "not-a-number"],
        ["compare", "--before", "run:1"],
        ["db"],
    ],
)
def test_usage_errors_exit_3_never_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.exit_code != ExitCode.INCONCLUSIVE
    assert "Traceback" not in result.output


def test_help_documents_the_crash_and_interrupt_codes() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "70 unexpected error" in result.output and "130 interrupted" in result.output
    assert "--debug" in result.output


@pytest.mark.parametrize("args", [["show", "1", "--\u202e\x1b[2J"], ["--\u202e\x1b]0;t\x07"]])
def test_usage_errors_quote_the_argument_inertly(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.USAGE
    assert "No such option" in result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "\\u202e" in result.output
