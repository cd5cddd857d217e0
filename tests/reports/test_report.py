"""The report of a real incident on the simulated fleet: the faulty pool is regressed with its
alert and change, healthy pools are ok, evidence shows the foreign characters where they are,
and the terminal, JSON and HTML renderings carry the same content."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import regex
import typer
from rich.console import Console
from typer.testing import CliRunner

from canary.cli.report import report as report_command
from canary.compare.aggregate import cohort_key
from canary.detectors.script import DEFAULT_SCRIPTS, unexpected_pattern
from canary.records import ResultFilter
from canary.reports import Report, build_report, render_html, render_terminal
from canary.store import open_store
from tests.reports.browser import needs_chromium, open_page, screenshot
from tests.reports.incident import CHANGE_ID, FAULTY_POOL, Incident, build_incident

FAULTY = cohort_key({"endpoint": FAULTY_POOL, "load": "probe"}, ("endpoint", "load"))
HEALTHY_POOLS = ("gpu-fp32", "long-ctx")


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incident]:
    from canary.sim.embedded import embedded_fleet

    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'incident.db'}"
    store = open_store(url)
    with embedded_fleet() as fleet:
        built = build_incident(store, fleet)
    assert built.fired, "the fault should fire an alert within the faulty rounds"
    yield built
    store.close()


@pytest.fixture(scope="module")
def report(incident: Incident) -> Report:
    return build_report(incident.store)


def test_faulty_cohort_is_regressed_with_its_alert_and_change(report: Report) -> None:
    assert report.reference == "baseline healthy"
    cell = report.cell(FAULTY, "unexpected_script")
    assert cell is not None and cell.status == "regressed", cell
    assert cell.alert_ids and "firing" in cell.reason
    assert cell.baseline_rate == 0.0 and cell.effect is not None and cell.effect > 0.05
    assert cell.verdict == "regression"  # the gate agrees with the daemon
    assert cell.trend[0].rate == 0.0 and cell.trend[-1].rate > 0.1
    assert [p.at for p in cell.trend] == sorted(p.at for p in cell.trend)

    alerts = {a.id: a for a in report.alerts}
    assert all(alerts[i].change_id == CHANGE_ID for i in cell.alert_ids)
    (group,) = [g for g in report.alert_groups if g.change is not None]
    assert group.change is not None and group.change.change_id == CHANGE_ID
    assert set(cell.alert_ids) <= set(group.alert_ids)
    assert [c.change_id for c in report.changes] == [CHANGE_ID]


def test_healthy_cohorts_are_ok(report: Report) -> None:
    for pool in HEALTHY_POOLS:
        key = cohort_key({"endpoint": pool, "load": "probe"}, ("endpoint", "load"))
        cells = [c for c in report.cells if c.cohort == key]
        assert cells and all(c.status == "ok" for c in cells), [
            (c.metric, c.status, c.reason) for c in cells
        ]


def test_pool_comparison_points_at_the_faulty_pool(report: Report) -> None:
    script = {p.value: p for p in report.pools if p.metric == "unexpected_script"}
    assert set(script) == {FAULTY_POOL, *HEALTHY_POOLS}
    assert script[FAULTY_POOL].different
    assert script[FAULTY_POOL].p_holm is not None and script[FAULTY_POOL].p_holm < 1e-4
    assert not any(script[p].different for p in HEALTHY_POOLS)


def test_session_impact_is_shown_for_the_regressed_metric(report: Report) -> None:
    rows = {r.cohort: r.impact for r in report.impact if r.metric == "unexpected_script"}
    assert rows[FAULTY].flagged_requests > 0 and rows[FAULTY].flagged_sessions > 0
    assert rows[FAULTY].session_rate >= rows[FAULTY].request_rate
    assert all(i.flagged_requests == 0 for key, i in rows.items() if key != FAULTY)


def test_evidence_locates_the_foreign_characters(incident: Incident, report: Report) -> None:
    samples = [s for s in report.evidence if s.metric == "unexpected_script"]
    assert samples and all(s.cohort == FAULTY for s in samples)
    foreign = unexpected_pattern(frozenset(DEFAULT_SCRIPTS))
    for s in samples:
        stored = incident.store.get_result(s.result_id)
        (score,) = [x for x in stored.scores if x.metric == "unexpected_script"]
        assert score.flagged and score.evidence is not None
        expected = [(sp["start"], sp["end"]) for sp in score.evidence["spans"]]
        located = [(sp.start + s.text_offset, sp.end + s.text_offset) for sp in s.spans]
        assert located == expected
        for sp in s.spans:
            assert stored.output_text is not None
            full = s.text_offset + sp.start, s.text_offset + sp.end
            assert s.text[sp.start : sp.end] == stored.output_text[full[0] : full[1]]
            assert foreign.search(s.text[sp.start : sp.end]) is not None
    chars = [s.detail["unexpected_chars"] for s in samples]
    assert chars == sorted(chars, reverse=True)  # worst first


def test_divergence_evidence_has_both_tokens_and_logprobs(report: Report) -> None:
    samples = [s for s in report.evidence if s.metric == "first_divergence"]
    assert samples
    for s in samples:
        d = s.detail
        (span,) = s.spans
        assert s.text[span.start : span.end] == d["endpoint_token"]
        assert d["reference_token"] != d["endpoint_token"]
        assert isinstance(d["endpoint_logprob"], float)
        assert isinstance(d["reference_logprob"], float)
        assert d["reference_gap_nats"] >= 0.5


def test_json_from_the_cli(incident: Incident) -> None:
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so the command is called by name as in `canary`
    app.command("report")(report_command)
    result = CliRunner().invoke(app, ["report", "--json", "--db", incident.store.url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    cells = {(c["cohort"], c["metric"]): c for c in data["cells"]}
    assert cells[(FAULTY, "unexpected_script")]["status"] == "regressed"
    assert cells[(FAULTY, "unexpected_script")]["trend"][-1]["rate"] > 0
    # Firing alerts carry their change; a pending one (the pool's model_mismatch, also moved by
    # the corrupt logits) is attributed only when it fires.
    assert {a["change_id"] for a in data["alerts"] if a["status"] == "firing"} == {CHANGE_ID}
    assert all(a["change_id"] is None for a in data["alerts"] if a["status"] == "pending")
    assert [g["change"]["id"] for g in data["alert_groups"] if g["change"]] == [CHANGE_ID]
    assert any(p["different"] and p["value"] == FAULTY_POOL for p in data["pools"])
    assert data["evidence"][0]["spans"] and data["changes"][0]["id"] == CHANGE_ID
    for key in ("since", "until", "metrics", "cohorts", "impact", "reference", "notes"):
        assert key in data


def test_terminal_shows_grid_alerts_pools_and_highlighted_span(report: Report) -> None:
    console = Console(record=True, width=220, color_system="truecolor", force_terminal=True)
    render_terminal(report, console)
    text = console.export_text(clear=False)
    regressed = len(report.regressed)
    assert regressed >= 2 and f"✗ regressed: {regressed}" in text
    assert CHANGE_ID in text and "DIFFERENT" in text
    sample = next(s for s in report.evidence if s.metric == "unexpected_script")
    span = sample.spans[0]
    assert f"↳ [{span.start}:{span.end}]" in text
    styled = console.export_html(inline_styles=True)
    marked = html.escape(sample.text[span.start : span.end], quote=False)
    assert regex.search(f'<span style="[^"]*background-color[^"]*">{regex.escape(marked)}', styled)


@needs_chromium
def test_html_report_renders_in_a_browser(report: Report, tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    page = open_page(page_file, tmp_path)
    assert page.console == []
    plotted = sum(any(c.metric == m and c.trend for c in report.cells) for m in report.metrics)
    assert f'data-plots-ready="{plotted}"' in page.dom
    assert page.dom.count('class="main-svg"') >= plotted
    assert CHANGE_ID in page.dom  # the change marker's label, drawn by plotly
    png = tmp_path / "report.png"
    screenshot(page_file, png, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_selection_narrows_the_report(incident: Incident) -> None:
    narrowed = build_report(incident.store, ResultFilter(labels={"pool": "gpu-fp32"}))
    assert {c.key for c in narrowed.cohorts} == {
        cohort_key({"endpoint": "gpu-fp32", "load": "probe"}, ("endpoint", "load"))
    }
    assert narrowed.alerts == [] and narrowed.changes == [] and narrowed.pools == []
    assert regex.search("tpu", json.dumps(narrowed.to_dict())) is None
