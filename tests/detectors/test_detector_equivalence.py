"""The per-output detectors' fast paths (prefilters, ASCII shortcuts, lookup tables) give
exactly what the plain scans they replace give, on generated text that hits every rule."""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise

import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.detectors.entropy import char_entropy, distinct_ngram_ratio, longest_repeat, tokenize
from canary.detectors.markers import (
    _BYTE_LEVEL,
    _SENTENCEPIECE,
    _UNKNOWN,
    _WORDPIECE,
    _touches_word,
    find_markers,
)
from canary.detectors.prompt_echo import echoed_tail
from canary.detectors.repetition import (
    _EMPTY_CELLS,
    _LAYOUT,
    _LETTER_UNIT,
    _RULES,
    _SAME_WORD,
    _SYMBOL_UNIT,
    RepetitionDetector,
)
from canary.detectors.salad import _MARKDOWN, _SENTENCE, _SYMBOL, symbol_share
from canary.detectors.script import unexpected_pattern
from canary.detectors.special_tokens import _GENERIC, _S_TAG, find_special_tokens
from canary.detectors.wordsalad import _WORD, vocabulary_figures

PIECES = [
    "a", "b", "ab", "Of", "ry", " a", "and ", "the ", "!", "?", ".", ",", ";", ":", "-", "=",
    "|", "  |", ",<<", " ", "\t", "\n", "0", "7", "汉", "ก", "é", "İ", "Ǆ", "🎉", "\ufffd",
    "\x1c", "Ġ", "Ċ", "▁", "█", "⁇", "##ing", "<|eot_id|>", "<s>", "</s>", "[PAD]", "```",
    "x yx y", "Sh you ", "1, ", "end. ", "(", ")", "…", "·", "\u0301",
]  # fmt: skip
UNITS = st.sampled_from(PIECES)
TEXT = st.lists(
    st.one_of(UNITS, st.tuples(UNITS, st.integers(2, 30)).map(lambda u: u[0] * u[1])),
    max_size=14,
).map("".join)
_ALL_RUNS = regex.compile(r"(.)\1*", regex.DOTALL)


def reference_found(d: RepetitionDetector, text: str, factor: float) -> list[tuple[int, int, str]]:
    """`RepetitionDetector`'s runs and units, scanning every run and every pattern."""
    found = []
    visible = sum(not c.isspace() for c in text)
    for m in _ALL_RUNS.finditer(text):
        length, char = m.end() - m.start(), m.group(1)
        if length >= d._limit(char, factor):
            found.append((m.start(), m.end(), f"{length}× {char!r}"))
        elif (
            length >= 6
            and char not in _LAYOUT
            and not char.isspace()
            and length / max(1, visible) >= d.dominant_share
        ):
            found.append((m.start(), m.end(), f"{length}× {char!r} is most of the output"))
    for m in _LETTER_UNIT.finditer(text):
        unit, repeats = m.group(1), (m.end() - m.start()) // len(m.group(1))
        if repeats >= d.letter_unit_repeats and len(set(unit)) > 1:
            found.append((m.start(), m.end(), f"{repeats}× {unit!r}"))
    for m in _SYMBOL_UNIT.finditer(text):
        unit, repeats = m.group(1), (m.end() - m.start()) // len(m.group(1))
        if repeats >= d.symbol_unit_repeats and len(set(unit)) > 1 and not set(unit) <= _RULES:
            found.append((m.start(), m.end(), f"{repeats}× {unit!r}"))
    for m in _SAME_WORD.finditer(text):
        if (repeats := len(m.group().split())) >= d.word_repeats:
            found.append((m.start(), m.end(), f"{repeats}× {m.group(1)!r}"))
    for m in _EMPTY_CELLS.finditer(text):
        if (cells := m.group().count("|") - 1) >= d.empty_cells:
            found.append((m.start(), m.end(), f"{cells} empty table cells"))
    return found


DETECTORS = [
    RepetitionDetector(),
    RepetitionDetector(letter_run=3, symbol_run=2, letter_unit_repeats=3, word_repeats=4),
    RepetitionDetector(letter_unit_repeats=2, word_repeats=2, dominant_share=0.0),
    RepetitionDetector(letter_unit_repeats=5, word_repeats=5, symbol_unit_repeats=3),
    RepetitionDetector(newline_run=1, digit_run=0, symbol_unit_repeats=1, empty_cells=1),
]


@settings(max_examples=400, deadline=None)
@given(TEXT, st.sampled_from([1.0, 2.0, 0.5]))
def test_repetition_finds_what_scanning_every_run_finds(text: str, factor: float) -> None:
    for d in DETECTORS:
        assert d._runs(text, factor) + d._units(text) == reference_found(d, text, factor)


def reference_symbol_share(text: str) -> float | None:
    visible = symbols = 0
    for at, c in enumerate(text):
        if c.isspace():
            continue
        visible += 1
        if c in _MARKDOWN or _SYMBOL.match(c) is None:
            continue
        if c in _SENTENCE and at > 0 and text[at - 1].isalnum():
            after = text[at + 1 : at + 2]
            if not after or after.isspace():
                continue
        symbols += 1
    return symbols / visible if visible else None


def reference_echoed_tail(prompt: str, output: str) -> tuple[int, int]:
    start = len(output) - len(output.lstrip("\ufffd"))
    rest, longest = output[start:], 0
    for size in range(1, min(len(prompt), len(rest)) + 1):
        if rest.startswith(prompt[-size:]):
            longest = size
    return (start, start + longest) if longest else (0, 0)


def reference_vocabulary(text: str) -> tuple[int, float, float] | None:
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 2:
        return None
    pairs = list(pairwise(words))
    return len(words), len(set(words)) / len(words), len(set(pairs)) / len(pairs)


def reference_markers(text: str) -> list[tuple[int, int, str]]:
    found = [(m.start(), m.end(), "byte-level BPE marker") for m in _BYTE_LEVEL.finditer(text)]
    found += [
        (m.start(), m.end(), "SentencePiece word marker")
        for m in _SENTENCEPIECE.finditer(text)
        if _touches_word(text, m.start(), m.end())
    ]
    found += [(m.start(), m.end(), "WordPiece continuation") for m in _WORDPIECE.finditer(text)]
    found += [(m.start(), m.end(), "unknown-token marker") for m in _UNKNOWN.finditer(text)]
    return sorted(found)


@settings(max_examples=400, deadline=None)
@given(TEXT, TEXT)
def test_text_figures_match_their_plain_definitions(text: str, other: str) -> None:
    assert repr(symbol_share(text)) == repr(reference_symbol_share(text))
    assert vocabulary_figures(text) == reference_vocabulary(text)
    assert find_markers(text) == reference_markers(text)
    for prompt in (other, other + text[:3], text[-5:]):
        assert echoed_tail(prompt, text) == reference_echoed_tail(prompt, text)
        cut = "\ufffd" + text
        assert echoed_tail(prompt, cut) == reference_echoed_tail(prompt, cut)
    counts = Counter(text).values()
    n = len(text)
    plain = max(0.0, math.log2(n) - sum(c * math.log2(c) for c in counts) / n) if n else 0.0
    assert repr(char_entropy(text)) == repr(plain)
    assert repr(char_entropy(text * 400)) == repr(
        max(0.0, math.log2(400 * n) - sum(400 * c * math.log2(400 * c) for c in counts) / (400 * n))
        if n
        else 0.0
    )


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(1, 6))
def test_no_repeated_ngram_means_every_ngram_is_distinct(text: str, n: int) -> None:
    tokens = tokenize(text)
    if longest_repeat(tokens) < n <= len(tokens):
        assert distinct_ngram_ratio(tokens, n) == 1.0


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_special_token_shapes_all_hold_an_opening_character(text: str) -> None:
    if not any(c in text for c in "<[|"):
        assert _GENERIC.search(text) is None and _S_TAG.search(text) is None
        assert find_special_tokens(text) == []


def test_ascii_text_is_skipped_only_where_every_ascii_character_is_expected() -> None:
    ascii_text = "".join(map(chr, range(128)))
    latin = unexpected_pattern(frozenset({"Latin", "Common", "Inherited"}))
    han = unexpected_pattern(frozenset({"Han", "Common", "Inherited"}))
    assert latin.search(ascii_text) is None
    assert han.search(ascii_text) is not None
