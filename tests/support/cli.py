"""The CLI run in-process, and the suite files the CLI tests hand it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from canary.cli.main import app

__all__ = ["invoke", "write_suite"]

runner = CliRunner()


def invoke(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run ``canary ARGS`` (with `env` added to the environment): its exit code and output."""
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def write_suite(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write `rows` to `path` as a JSONL suite file, one probe a line; return `path`."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
