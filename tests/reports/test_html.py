"""Model output is untrusted: in the HTML report it is text, never markup or script.

The store holds a healthy day-before and a window whose outputs carry a script tag, an event
handler and Thai characters, stored and scored through the ordinary Store and scoring APIs; a
change note and a cohort label carry markup too. The window is tested against the day before
(no baseline is stored), so the cohort regresses and its outputs become evidence.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import regex

from canary.reports import Report, build_report, render_html
from canary.reports.html import script_json
from canary.store import Store, open_store
from canary.store.changes import record_change
from tests.reports.browser import needs_chromium, open_page, screenshot
from tests.support.windows import store_windows

XSS = "<script>alert(1)</script>"
OUTPUT = f'{XSS}<img src=x onerror="document.body.dataset.pwned=1"> สวัสดี'
NOTE = "</script><script>document.body.dataset.pwned=2</script><!--"
LOAD = '<i>"burst"</i>'  # a cohort label with markup: it names the grid row and the plot line


@pytest.fixture
def store(sqlite_url: str) -> Store:
    store = open_store(sqlite_url)
    now, _ = store_windows(store, suite="xss", load=LOAD, text=OUTPUT)
    record_change(store, "deploy-<b>1</b>", "deploy", {"pool": "a"}, now - timedelta(hours=3), NOTE)
    return store


@pytest.fixture
def report(store: Store) -> Report:
    built = build_report(store)
    assert built.reference.startswith("earlier window")
    (cell,) = [c for c in built.cells if c.metric == "unexpected_script"]
    assert cell.status == "regressed" and cell.verdict == "regression", cell
    assert built.evidence and all(s.text == OUTPUT for s in built.evidence)
    return built


def test_model_output_and_labels_render_as_text(report: Report) -> None:
    page = render_html(report)
    assert XSS not in page and 'onerror="document' not in page and NOTE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;i&gt;&quot;burst&quot;&lt;/i&gt;" in page  # the label, in the grid
    # Exactly the page's own four script elements: error hook, plotly.js, plot data, boot.
    assert len(regex.findall(r"<script\b", page)) == 4


def test_the_offending_span_is_marked(report: Report) -> None:
    sample = report.evidence[0]
    (span,) = sample.spans
    assert sample.text[span.start : span.end] == "สวัสดี"
    page = render_html(report)
    assert f'<mark data-start="{span.start}" data-end="{span.end}"' in page
    assert regex.search(r"<mark [^>]*>สวัสดี</mark>", page)


def test_plot_data_cannot_leave_its_script_element(report: Report) -> None:
    page = render_html(report)
    match = regex.search(r'<script type="application/json" id="plot-data">(.*?)</script>', page)
    assert match is not None
    raw = match.group(1)
    assert "<" not in raw and ">" not in raw and "&" not in raw
    specs = json.loads(raw)
    texts = [a["text"] for s in specs for a in s["figure"]["layout"]["annotations"]]
    assert any("deploy-&lt;b&gt;1&lt;/b&gt;" in t for t in texts)  # plotly shows it as text
    assert json.loads(script_json({"s": "</script><!--\u2028"})) == {"s": "</script><!--\u2028"}


@needs_chromium
def test_injected_markup_does_not_run_in_a_browser(report: Report, tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    page = open_page(page_file, tmp_path)
    # No console line at all: no script error, no CSP violation (nothing inline was injected).
    assert page.console == []
    body = regex.search(r"<body[^>]*>", page.dom)
    assert body is not None and "pwned" not in body.group(0), body
    assert f'data-plots-ready="{len(report.metrics)}"' in body.group(0)
    assert 'class="main-svg"' in page.dom
    assert '<div id="js-errors" hidden=""></div>' in page.dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.dom  # shown as literal text
    assert "<title>canary report " in page.dom
    png = tmp_path / "report.png"
    screenshot(page_file, png, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_an_empty_store_reports_no_data(sqlite_url: str) -> None:
    from rich.console import Console

    from canary.reports import render_terminal

    empty = build_report(open_store(sqlite_url))
    assert empty.cells == [] and empty.alerts == [] and empty.evidence == []
    assert any("no results" in note for note in empty.notes)
    assert json.loads(json.dumps(empty.to_dict()))["cells"] == []
    console = Console(record=True, width=120)
    render_terminal(empty, console)
    assert "no cohort has results" in console.export_text()
    assert "No cohort has results" in render_html(empty)
