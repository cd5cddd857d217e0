"""At 80 columns the report and the compare table keep every cohort value and metric name
whole: labels every row shares are said once, the rest wraps, nothing ends in "…"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.cells import cell_len
from rich.console import Console

from canary.cli.compare import render_comparison
from canary.compare import run_compare
from canary.reports import build_report, render_terminal
from canary.store import Store, open_store
from tests.reports.narrow import ENDPOINTS, shown_whole, table_columns, write_round


@pytest.fixture
def store(sqlite_url: str) -> tuple[Store, int, int]:
    store = open_store(sqlite_url)
    store.register_endpoints(ENDPOINTS)
    now = datetime.now(UTC)
    before = write_round(store, now - timedelta(hours=30), 0)
    after = write_round(store, now - timedelta(hours=2), 3)
    return store, before, after


def _narrow() -> Console:
    return Console(width=80, record=True, color_system=None, emoji=False)


def test_the_report_reads_whole_at_80_columns(store: tuple[Store, int, int]) -> None:
    report = build_report(store[0])
    assert len(report.metrics) >= 2
    console = _narrow()
    render_terminal(report, console)
    text = console.export_text()
    assert "…" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= 80
    grids = [t for t in table_columns(text) if t and t[0].startswith("endpoint")]
    assert grids, text
    # Each row shows its endpoint once; the shared load=probe is said above the grid.
    assert "everyrowload=probe" in text.replace(" ", "").replace("\n", "")
    assert all("endpoint=" not in t[0].removeprefix("endpoint") for t in grids)
    for endpoint in ENDPOINTS:
        assert shown_whole(text, endpoint.name), endpoint.name
    for metric in report.metrics:
        assert shown_whole(text, metric), metric


def test_the_compare_table_reads_whole_at_80_columns(store: tuple[Store, int, int]) -> None:
    db, before, after = store
    comparison = run_compare(db, f"run:{before}", f"run:{after}")
    console = _narrow()
    render_comparison(comparison, show_all=True, out=console)
    text = console.export_text()
    assert "…" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= 80
    # Too narrow for the ten-column table: one table per cohort, named in its title.
    titles = {line.strip() for line in text.splitlines()}
    for endpoint in ENDPOINTS:
        assert f"endpoint {endpoint.name}" in titles, endpoint.name
    assert "endpoint=" not in text.split("tests,")[0]
    for verdict in comparison.verdicts:
        assert shown_whole(text, verdict.metric), verdict.metric
        assert shown_whole(text, verdict.verdict), verdict.verdict


def test_the_compare_table_stays_one_table_where_it_fits(store: tuple[Store, int, int]) -> None:
    db, before, after = store
    comparison = run_compare(db, f"run:{before}", f"run:{after}")
    console = Console(width=200, record=True, color_system=None)
    render_comparison(comparison, show_all=True, out=console)
    ((header, metrics, *_),) = table_columns(console.export_text())
    assert header.startswith("endpoint") and "endpoint=" not in header
    for endpoint in ENDPOINTS:
        assert endpoint.name in header, endpoint.name
    assert all(v.metric in metrics for v in comparison.verdicts)
