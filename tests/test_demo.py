"""`canary demo`, shortened as CI runs it: from nothing to an alert on the faulty pool,
attributed to the recorded deploy, with the report printed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from canary.cli.main import app
from canary.demo import DEMO_CHANGE, FAULTY_POOL


def test_demo_alerts_on_the_faulty_pool(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--quick", "--dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["detected"] is True
    firing = [a for a in outcome["alerts"] if a["status"] == "firing"]
    assert firing and all(
        a["labels"].get("pool") == FAULTY_POOL for a in firing if "pool" in a["labels"]
    )
    assert any(a["change_id"] == DEMO_CHANGE for a in firing)
    assert (tmp_path / "canary.db").exists()

    report = CliRunner().invoke(
        app, ["report", "--db", f"sqlite:///{tmp_path / 'canary.db'}", "--since", "7d"]
    )
    assert report.exit_code == 0, report.output
    assert FAULTY_POOL in report.output
