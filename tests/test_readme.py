"""The README's commands exist and its quick start matches what CI runs (docs that cannot rot)."""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from canary.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
COMMANDS = [
    line.split("#", 1)[0].strip()
    for block in BLOCKS
    for line in block.splitlines()
    if line.strip().startswith("canary ")
]


def command_path(line: str) -> list[str]:
    """`canary baseline capture healthy --select …` → ["baseline", "capture"]."""
    words = shlex.split(line.rstrip("&").strip())[1:]
    path: list[str] = []
    group = app
    import typer.main

    command = typer.main.get_command(group)
    for word in words:
        if word.startswith("-"):
            break
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        path.append(word)
        command = sub
    return path


def test_readme_shows_canary_commands() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("line", COMMANDS)
def test_every_readme_command_exists(line: str) -> None:
    path = command_path(line)
    assert path, f"README command {line!r} names no canary command"
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, f"{line!r}: {result.output}"
    options = [w.split("=")[0] for w in shlex.split(line.rstrip("&")) if w.startswith("--")]
    for option in options:
        assert option in result.output, (
            f"README uses {option} but `canary {' '.join(path)}` has none"
        )


def test_quick_start_is_two_commands_and_ci_runs_the_same_tests() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    main_job, test_command = [line for line in blocks[-1].splitlines() if line.strip()]
    assert main_job.strip() == "canary demo"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command.strip() in [line.strip() for line in ci]


FLEET_BLOCKS = [
    textwrap.dedent(block)
    for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
    if "endpoints:" in block
]


@pytest.mark.parametrize("block", FLEET_BLOCKS, ids=lambda b: b.split("name:", 1)[-1][:20])
def test_every_readme_fleet_file_is_valid(block: str) -> None:
    """A fleet file shown in the README loads with the real validator (keys named only)."""
    from canary.config.fleet import FleetConfig

    FleetConfig.model_validate(yaml.safe_load(block))


def test_readme_shows_a_fleet_file_with_reference_and_shaping() -> None:
    shown = " ".join(FLEET_BLOCKS)
    for key in ("reference:", "extra_body:", "drop_params:", "record_headers:", "auth:"):
        assert key in shown, key
