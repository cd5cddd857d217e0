"""Hostile text from endpoints and users is inert on every renderer: terminal, JSON and HTML.

A real store holds results whose output, tokens, top-logprob keys, served_by and error detail
carry terminal escape sequences (clear screen, set title, erase line, a forged gate line), rich
markup (``[link=…]``), C1 controls and bidi overrides; a change id and note and a cohort label
carry them too. Each command that prints them is run through the CLI, once in a real colour
terminal (a subprocess with FORCE_COLOR), so rich's escape-emitting path is exercised.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import regex
from rich.console import Console
from sqlalchemy import update
from typer.testing import CliRunner

from canary.cli.main import app
from canary.cli.output import json_text
from canary.records import ResultFilter, TokenLogprob
from canary.reports import build_report, render_terminal
from canary.store import Store, open_store
from canary.store.changes import record_change
from canary.store.models import AlertRow
from tests.daemon.rows import add_alert
from tests.support.windows import ENDPOINT, store_windows

FORGED = "\x1b[2K\rgate: PASS (exit 0)"
LINK = "[link=http://evil]x[/link]"
OUTPUT = (
    "สวัสดี ครับ\x1b[2J\x1b[H\x1b]0;pwned\x07\n"
    f"{FORGED}\n"
    f"\u202edlrow olleh\u202c \x9b31m {LINK} :smile:"
)
TOKENS = [
    TokenLogprob(LINK, -0.1, {"\x1b]8;;http://evil\x1b\\k": -0.2, "[bold]b[/]": -1.0}),
    TokenLogprob("\x1b[2K", -0.3, {}),
    TokenLogprob("\u2066iso\u2069", None, {}),
]
CHANGE_ID = "deploy-\x1b[31m\u202e<b>1:fire:"
NOTE = "\x1b]0;title\x07 new \u2067kernels\u2069 <i>x</i> [bold]b[/] \x85"
LOAD = "\u202eburst\x1b[2K<i>"
SERVED_BY = "replica-1\x1b]8;;http://evil\x1b\\"
SECRET = "sk-live-0123456789-secret"

BIDI = regex.compile("[\u202a-\u202e\u2066-\u2069]")
C1 = regex.compile("[\x80-\x9f]")
runner = CliRunner()


@pytest.fixture
def hostile(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, int]:
    """A healthy day-before, a window of hostile outputs (Thai, so they regress and become
    evidence), a hostile change and alert; the id of one hostile result."""
    monkeypatch.delenv("CANARY_CHANGE_TOKEN", raising=False)
    store = open_store(sqlite_url)
    now, ids = store_windows(
        store, suite="hostile", load=LOAD, text=OUTPUT + SECRET, served_by=SERVED_BY, tokens=TOKENS
    )
    record_change(store, CHANGE_ID, "deploy", {"pool": "a"}, now - timedelta(hours=3), NOTE)
    labels = {**ENDPOINT.cohort_labels(), "load": LOAD}
    add_alert(store, labels, "unexpected_script", "firing")
    with store.engine.begin() as conn:
        conn.execute(
            update(AlertRow).values(
                change_id=CHANGE_ID,
                evidence_ids=ids[:3],
                pending_at=now - timedelta(hours=2),
                fired_at=now - timedelta(hours=1),
                k=20,
                n=20,
            )
        )
    # Exported after the rows were stored: printing must scrub it on its own.
    monkeypatch.setenv("CANARY_CHANGE_TOKEN", SECRET)
    return store, ids[0]


def assert_inert(text: str) -> None:
    """No raw ESC, BEL, C1 or bidi control; no secret."""
    assert "\x1b" not in text and "\x07" not in text, text
    assert not C1.search(text), C1.findall(text)
    assert not BIDI.search(text), BIDI.findall(text)
    assert SECRET not in text


def assert_colour_output_inert(out: str) -> None:
    """Rich's own colour sequences are allowed; none that the data brought."""
    assert "\x1b[" in out  # a colour terminal really was used
    for sequence in ("\x1b[2K", "\x1b[2J", "\x1b[H", "\x1b]", "\x07"):  # rich uses [31m
        assert sequence not in out, sequence
    assert not C1.search(out) and not BIDI.search(out)
    assert SECRET not in out


def invoke(store: Store, *args: str) -> str:
    """The CLI in-process (80 columns, no colour): for JSON and short lines."""
    result = runner.invoke(app, [*args, "--db", store.url])
    assert result.exit_code == 0, result.output
    return result.output


def canary(store: Store, *args: str, colour: bool = False) -> str:
    """The real `canary` process, 250 columns wide so no table cell wraps; with ``colour``, in
    a colour terminal as far as rich can tell (FORCE_COLOR), so rich emits its escapes."""
    env = {**os.environ, "COLUMNS": "250", "TERM": "xterm-256color"}
    env.pop("FORCE_COLOR", None)
    if colour:
        env["FORCE_COLOR"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "canary", *args, "--db", store.url],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_show_prints_output_tokens_and_served_by_as_inert_text(hostile: tuple[Store, int]) -> None:
    store, result_id = hostile
    out = canary(store, "show", str(result_id))
    assert_inert(out)
    assert "\\x1b[2K\\x0dgate: PASS (exit 0)" in out  # the forged line, shown as text
    for shown in ("\\x1b]0;pwned\\x07", "\\u202edlrow", "\\x9b31m", ":smile:", "***"):
        assert shown in out, shown
    assert LINK in out and "'[bold]b[/]'" in out  # output panel, token table: brackets visible
    assert "replica-1\\x1b]8;;http://evil" in out


def test_show_json_is_exact_valid_and_inert(hostile: tuple[Store, int]) -> None:
    store, result_id = hostile
    out = invoke(store, "show", str(result_id), "--json")
    assert_inert(out)
    shown = json.loads(out)
    assert shown["output_text"] == OUTPUT + "***"  # exact, but for the scrubbed secret
    assert [t["token"] for t in shown["tokens"]] == [t.token for t in TOKENS]
    assert list(shown["tokens"][0]["top"]) == list(TOKENS[0].top)
    assert shown["served_by"] == SERVED_BY


def test_show_in_a_colour_terminal_emits_no_sequence_from_the_data(
    hostile: tuple[Store, int],
) -> None:
    store, result_id = hostile
    out = canary(store, "show", str(result_id), colour=True)
    assert_colour_output_inert(out)
    assert "\\x1b[2K\\x0dgate: PASS (exit 0)" in out and LINK in out
    assert "http://evil" in out  # printed as text, not as an OSC 8 hyperlink target


def test_change_list_and_record_show_ids_and_notes_as_text(hostile: tuple[Store, int]) -> None:
    store, _ = hostile
    out = canary(store, "change", "list")
    assert_inert(out)
    for shown in ("\\x1b[31m\\u202e<b>1:fire:", "\\u2067kernels\\u2069", "[bold]b[/] \\x85"):
        assert shown in out, shown
    recorded = invoke(store, "change", "record", "--id", "run:abc:", "--kind", "deploy",
                      "--note", "[red]x[/]")  # fmt: skip
    assert "run:abc:" in recorded and "🔤" not in recorded  # no emoji code replaced
    listed = json.loads(invoke(store, "change", "list", "--json"))
    assert {c["id"]: c["note"] for c in listed} == {CHANGE_ID: NOTE, "run:abc:": "[red]x[/]"}


def test_alerts_show_cohort_and_change_as_text(hostile: tuple[Store, int]) -> None:
    store, _ = hostile
    out = canary(store, "alerts")
    assert_inert(out)
    assert "\\u202eburst\\x1b[2K<i>" in out and "deploy-\\x1b[31m" in out


def test_report_in_the_terminal_is_inert(hostile: tuple[Store, int]) -> None:
    store, _ = hostile
    out = canary(store, "report", "--since", "48h")
    assert_inert(out)
    assert "\\x1b[31m\\u202e<b>1:fire:" in out  # the change: alert group and list
    assert "\\u202eburst" in out  # the cohort label
    assert LINK in out and "\\x1b[2K\\x0dgate: PASS" in out  # the evidence sample


def test_report_renderer_in_a_colour_terminal(hostile: tuple[Store, int]) -> None:
    store, _ = hostile
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor", width=200)
    report = build_report(store, ResultFilter(since=datetime.now(UTC) - timedelta(hours=48)))
    assert report.evidence, "the hostile outputs should be shown as evidence"
    render_terminal(report, console)
    out = buffer.getvalue()
    assert_colour_output_inert(out)
    assert "\\u202eburst" in out and "\\x1b]0;pwned" in out


def test_report_html_escapes_markup_and_shows_bidi_controls(
    hostile: tuple[Store, int], tmp_path: Path
) -> None:
    store, _ = hostile
    page_file = tmp_path / "report.html"
    invoke(store, "report", "--since", "48h", "--html", str(page_file))
    page = page_file.read_text(encoding="utf-8")
    assert_inert(page)
    assert "<b>1" not in page and "<i>x</i>" not in page and "burst\\x1b[2K<i>" not in page
    assert "deploy-\\x1b[31m\\u202e&lt;b&gt;1:fire:" in page
    assert "\\u202eburst\\x1b[2K&lt;i&gt;" in page
    assert "\\x1b[2K\\x0dgate: PASS (exit 0)" in page  # the evidence sample
    # The plot data, too, travels without a raw control character and reads back as text.
    match = regex.search(r'<script type="application/json" id="plot-data">(.*?)</script>', page)
    assert match is not None and match.group(1).isascii()
    legends = [t["name"] for s in json.loads(match.group(1)) for t in s["figure"]["data"]]
    assert any("\\u202eburst" in name for name in legends), legends


def test_compare_echo_renders_no_emoji(hostile: tuple[Store, int]) -> None:
    store, _ = hostile
    result = runner.invoke(app, ["compare", "--before", "run:abc:", "--after", "run:1",
                                 "--db", store.url])  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "run:abc:" in result.output and "🔤" not in result.output  # `:abc:` is no emoji


def test_json_output_survives_lone_surrogates_and_non_finite_floats() -> None:
    text = json_text({"s": "a\ud800b\u202e\x1b", "k\udfff": [float("nan"), float("inf"), 1.5]})
    text.encode("utf-8")  # writable
    assert_inert(text)
    assert json.loads(text) == {"s": "a\ud800b\u202e\x1b", "k\udfff": [None, None, 1.5]}
