"""`canary report` scope: rows by `--by` (default endpoint,load, whatever the newest baseline's
grouping), results of `--suite` only (in `canary cohorts` too), and `--html` writing the file
instead of printing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from canary.cli.main import app
from canary.compare import capture_baseline
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter
from canary.store import Store, open_store
from tests.reports.narrow import ENDPOINTS, write_round

SMOKE = Suite(name="smoke", probes=[Probe(id="s1", kind="script", prompt="Say hi.")])


@pytest.fixture
def store(sqlite_url: str) -> Store:
    store = open_store(sqlite_url)
    store.register_endpoints(ENDPOINTS)
    now = datetime.now(UTC)
    write_round(store, now - timedelta(hours=30), 0)
    write_round(store, now - timedelta(hours=2), 3)
    write_round(store, now - timedelta(hours=1), 0, suite=SMOKE)
    return store


def _report(store: Store, *args: str) -> dict[str, Any]:
    out = CliRunner().invoke(app, ["report", "--json", "--db", store.url, *args])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert isinstance(data, dict)
    return data


def test_rows_follow_by_not_the_newest_baseline(store: Store) -> None:
    since = datetime.now(UTC) - timedelta(hours=48)
    capture_baseline(store, "per-pool", ResultFilter(since=since, suites=("narrow",)), ["pool"])
    data = _report(store)
    assert data["by"] == ["endpoint", "load"]
    assert len(data["cohorts"]) == len(ENDPOINTS)
    assert data["reference"] == "baseline per-pool"
    assert any("pass --by pool" in note for note in data["notes"])
    data = _report(store, "--by", "pool")
    assert data["by"] == ["pool"]
    keys = {c["key"] for c in data["cohorts"]}
    assert keys == {f"pool={e.name[:8]}" for e in ENDPOINTS}
    assert any(c["verdict"] for c in data["cells"])


def test_a_coarser_baseline_is_every_finer_rows_reference(store: Store) -> None:
    since = datetime.now(UTC) - timedelta(hours=48)
    until = datetime.now(UTC) - timedelta(hours=24)
    capture_baseline(store, "per-endpoint", ResultFilter(since=since, until=until), ["endpoint"])
    data = _report(store, "--suite", "narrow")
    assert data["by"] == ["endpoint", "load"] and data["suites"] == ["narrow"]
    cells = data["cells"]
    assert isinstance(cells, list)
    regressed = {c["cohort"] for c in cells if c["verdict"] == "regression"}
    assert regressed == {f"endpoint={ENDPOINTS[1].name},load=probe"}


def test_suite_narrows_every_count(store: Store) -> None:
    everything = _report(store)
    smoke = _report(store, "--suite", "smoke")
    count = [c["n"] for c in smoke["cells"] if c["metric"] == "error_rate"]
    assert count == [60] * len(ENDPOINTS)
    total = [c["n"] for c in everything["cells"] if c["metric"] == "error_rate"]
    assert total == [120] * len(ENDPOINTS)
    out = CliRunner().invoke(app, ["report", "--suite", "nope", "--db", store.url])
    assert out.exit_code == 3 and "known: narrow, smoke" in out.output


def test_html_writes_the_file_and_prints_one_line(store: Store, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    out = CliRunner().invoke(app, ["report", "--html", str(page), "--db", store.url])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == f"wrote {page}"
    assert "<html" in page.read_text(encoding="utf-8")


def test_cohorts_counts_the_named_suite_only(store: Store) -> None:
    def results(*args: str) -> list[int]:
        out = CliRunner().invoke(app, ["cohorts", "--json", "--db", store.url, *args])
        assert out.exit_code == 0, out.output
        return sorted(c["results"] for c in json.loads(out.stdout)["cohorts"])

    assert results() == [120] * len(ENDPOINTS)
    assert results("--suite", "smoke") == [60] * len(ENDPOINTS)
    assert results("--suite", "smoke,narrow") == [120] * len(ENDPOINTS)
