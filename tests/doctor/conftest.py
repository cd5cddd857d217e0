"""A daemon config on disk (simulated fleet, a tiny suite) and its store, for doctor tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

DaemonFile = Callable[..., Path]


@pytest.fixture
def daemon_file(tmp_path: Path) -> DaemonFile:
    """Writes a daemon config; keyword arguments replace or add top-level keys."""
    suite = tmp_path / "tiny.jsonl"
    suite.write_text(json.dumps({"id": "hello", "prompt": "Say hello"}) + "\n")

    def write(**changes: object) -> Path:
        config: dict[str, object] = {
            "sim": True,
            "schedules": [{"name": "tiny", "suite": str(suite), "every": "5m"}],
            **changes,
        }
        path = tmp_path / "daemon.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write
