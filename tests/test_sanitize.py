"""The hostile-text boundaries: storable on both databases, inert on a terminal."""

from __future__ import annotations

import json
import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.sanitize import (
    MAX_JSON_DEPTH,
    SecretScrubFilter,
    markup_safe,
    one_line,
    printable,
    register_secret_envs,
    scrub_secrets,
    storable_json,
    storable_text,
)

# Every code point, lone surrogates included (what json.loads gives for "\ud800").
any_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF))

CONTROLS = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))]
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


@given(any_text)
@settings(max_examples=300)
def test_storable_text_encodes_as_utf8_without_nul(value: str) -> None:
    stored = storable_text(value)
    assert stored is not None
    stored.encode("utf-8")  # raises on a lone surrogate
    assert "\x00" not in stored
    assert len(stored) == len(value)  # one replacement character per bad one, nothing dropped


def test_storable_text_replaces_and_cuts() -> None:
    assert storable_text("a\ud800b\x00c") == "a\ufffdb\ufffdc"
    assert storable_text(b"ok \xff") == "ok \ufffd"
    assert storable_text("abcdef", limit=3) == "abc"
    assert storable_text(None) is None
    with pytest.raises(TypeError, match="text or bytes"):
        storable_text({"finish": "object"})  # type: ignore[arg-type]


json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=300)
def test_storable_json_round_trips_through_strict_json(value: object) -> None:
    stored = storable_json(value)
    encoded = json.dumps(stored, ensure_ascii=False, allow_nan=False)
    encoded.encode("utf-8")
    assert "\\u0000" not in encoded
    assert json.loads(encoded) == stored


def test_storable_json_nonfinite_and_depth() -> None:
    assert storable_json({"a": [math.nan, math.inf, -math.inf, 1.5]}) == {
        "a": [None, None, None, 1.5]
    }
    deep: list[object] = []
    node = deep
    for _ in range(100_000):
        child: list[object] = []
        node.append(child)
        node = child
    stored = storable_json(deep)
    depth = 0
    while isinstance(stored, list) and stored:
        stored, depth = stored[0], depth + 1
    assert depth == MAX_JSON_DEPTH
    assert isinstance(stored, str) and "cut" in stored


@given(any_text)
@settings(max_examples=300)
def test_printable_emits_no_control_or_bidi(value: str) -> None:
    shown = printable(value)
    shown.encode("utf-8")
    assert not any(c in shown for c in CONTROLS + BIDI)
    line = one_line(value)
    assert "\n" not in line and "\t" not in line
    assert not any(c in line for c in CONTROLS + BIDI)


def test_printable_shows_escapes_visibly() -> None:
    forged = "ok\x1b[2K\r\x1b]0;title\x07gate: PASS (exit 0)\u202eevil"
    shown = printable(forged)
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[2K" in shown and "\\x0d" in shown and "\\u202e" in shown
    assert printable("Thai ภาษา\nnext\tcol") == "Thai ภาษา\nnext\tcol"


def test_markup_safe_keeps_brackets_literal() -> None:
    from rich.console import Console

    console = Console(record=True, force_terminal=True, width=200)
    console.print(f"token: {markup_safe('[link=http://evil]x[/link] [bold]b')}")
    text = console.export_text()
    assert "[link=http://evil]x[/link] [bold]b" in text
    assert "\x1b]8;" not in console.export_text(styles=True)


def test_secrets_are_scrubbed_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_TEST_SECRET_KEY", "sk-live-123456")
    register_secret_envs(["CANARY_TEST_SECRET_KEY", None])
    echoed = "your key is sk-live-123456, thanks"
    assert scrub_secrets(echoed) == "your key is ***, thanks"
    assert storable_text(echoed) == "your key is ***, thanks"
    assert storable_json({"h": [echoed]}) == {"h": ["your key is ***, thanks"]}
    assert "sk-live" not in printable(echoed)

    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "got %s", (echoed,), None)
    assert SecretScrubFilter().filter(record)
    assert record.getMessage() == "got your key is ***, thanks"


def test_short_values_are_not_treated_as_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_TEST_SHORT_SECRET", "ab")
    register_secret_envs(["CANARY_TEST_SHORT_SECRET"])
    assert scrub_secrets("abc abd") == "abc abd"
