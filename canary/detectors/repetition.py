"""Runs of one character, short letter units and words repeated back to back.

Broken servers loop below the entropy detector's bars: ``!!!!!!!!!!!!!!`` (vLLM#22881, NaN
logits decode as token 0), ``OfOfOfOf…`` (BitNet#284), ``metryryryry…`` (TGI#2223), ``a a a a …``
(TensorRT-LLM#651), ``and and and …`` (TGI#3043), and a table row of empty cells
(vLLM#9409). Counting characters and words, not tokens, makes one rule hold for every
tokenizer. The limits sit above everything healthy outputs do (the shipped suites on the
healthy simulated fleet, and the clean corpus under ``tests/data``; figures in
docs/detectors.md). That fleet's tiny model loops on whole sub-words at temperature 0
(``.request`` 146 times, ``/html/html…``, ``#`` 225 times), so longer units and layout
characters are left to the entropy detector and baselines: what is flagged here is what no
healthy model emits at all.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from itertools import groupby, islice
from typing import ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput
from canary.detectors.metrics import Bins, Metric, continuous, rate
from canary.detectors.registry import register_detector
from canary.detectors.spans import explained, spans_evidence

# Runs this long are judged by the dominant-share rule; shorter ones only under a lower limit.
_SHORTEST_RUN = 6
_RUNS: dict[int, re.Pattern[str]] = {}
# Characters that draw rules, borders, tables and separators: long runs of them are layout.
_RULES = frozenset("-=_*#~.·•─━═│|/\\+^")
# …and, for runs, also CSV's empty fields (",,,,"), arrows and merge markers ("<<<<<<<").
_LAYOUT = _RULES | frozenset(",<> \t")
# A unit of 2–3 letters (spaces allowed) repeated back to back: "OfOfOf", "ryry", " a a a".
_LETTER_UNIT = regex.compile(r"((?=[\p{L} ]{2,3})[\p{L} ]{2,3}?)\1+")
# A unit of 2–3 symbols repeated back to back: ",<<,<<,<<" (layout-only units are rules).
_SYMBOL_UNIT = regex.compile(r"([^\w\s]{2,3}?)\1+")
# One word (with a letter: "0 0 0 0" is a matrix row) repeated with only spaces between.
_SAME_WORD = regex.compile(r"\b(\w*[^\W\d_]\w*)(?:[ \t]+\1\b)+")
# Empty markdown table cells in a row: "|  |  |  |".
_EMPTY_CELLS = regex.compile(r"\|(?:[ \t]*\|)+")
# Whitespace to split() but not to regex's \s: the information separators.
_SEPARATORS = re.compile(r"[\x1c-\x1f]")
_CLEAN = Score("repetition", 0.0)  # frozen: one shared value serves every clean output


@register_detector
@dataclass(frozen=True)
class RepetitionDetector(Detector):
    """Flags outputs holding a character run or a short unit repeated far past healthy text."""

    name: ClassVar[str] = "repetition"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "repetition",
            0.005,
            reason="no healthy output holds these runs; 0.5% more answers looping is a decoding "
            "fault users see",
            explain=explained("repetition", ("reason", "length")),
        ),
        continuous(
            "repeated_share",
            0.05,
            Bins(0.0, 1.0, 100),
            reason="the share of an answer its longest flagged repeat covers; 5 points more on "
            "the same probes is a loop starting",
        ),
    )

    letter_run: int = 16
    """A letter (or ideograph) repeated this many times in a row is a loop."""
    digit_run: int = 20
    """A digit repeated this many times in a row is a loop."""
    symbol_run: int = 10
    """Other punctuation or symbols (``!``, ``?``, ``@``, emoji) repeated this many times."""
    layout_run: int = 256
    """Rule, border and table characters (``-``, ``=``, ``#``, ``|``, spaces) repeated this many."""
    newline_run: int = 40
    """Newlines in a row (healthy code reaches 30)."""
    letter_unit_repeats: int = 12
    """A unit of 2–3 letters repeated back to back this often."""
    symbol_unit_repeats: int = 6
    """A unit of 2–3 symbols, not all layout characters, repeated back to back this often."""
    word_repeats: int = 8
    """One word repeated with only spaces between, this often."""
    empty_cells: int = 8
    """Empty table cells in a row."""
    dominant_share: float = 0.5
    """One run of 6 or more covering this share of the non-space text is the whole answer."""
    code_factor: float = 2.0
    """Code probes multiply the letter, digit and symbol limits (hex masks, ``)))``)."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        text = inp.output_text or ""
        factor = self.code_factor if inp.probe.kind == "code" else 1.0
        found = self._runs(text, factor) + self._units(text)
        covered = max((e - s for s, e, _ in found), default=0)
        share = covered / len(text) if text else None
        if not found:
            return [_CLEAN, Score("repeated_share", share)]
        start, end, what = max(found, key=lambda f: f[1] - f[0])
        evidence = spans_evidence(text, found, reason=what, length=end - start)
        return [
            Score("repetition", 1.0, flagged=True, evidence=evidence),
            Score("repeated_share", share),
        ]

    def _limit(self, char: str, factor: float) -> float:
        if char == "\n":
            return self.newline_run
        if char in _LAYOUT or char.isspace():
            return self.layout_run
        if char.isdigit():
            return self.digit_run * factor
        if char.isalpha():
            return self.letter_run * factor  # 0xFFFFFFFFFFFFFFFF
        return self.symbol_run * factor

    def _runs(self, text: str, factor: float) -> list[tuple[int, int, str]]:
        found = []
        visible = -1  # counted on first need: most texts hold no run worth judging
        for m in _run_pattern(self._shortest_run(factor)).finditer(text):
            length = m.end() - m.start()
            char = m.group(1)
            if length >= self._limit(char, factor):
                found.append((m.start(), m.end(), f"{length}× {char!r}"))
            elif length >= 6 and char not in _LAYOUT and not char.isspace():
                if visible < 0:
                    visible = sum(map(len, text.split()))  # split() cuts at isspace()
                if length / max(1, visible) >= self.dominant_share:
                    found.append((m.start(), m.end(), f"{length}× {char!r} is most of the output"))
        return found

    def _shortest_run(self, factor: float) -> int:
        """The shortest run any rule of `_runs` can flag: shorter runs need not be found."""
        limits = (self.newline_run, self.layout_run, self.digit_run * factor,
                  self.letter_run * factor, self.symbol_run * factor)  # fmt: skip
        shortest = _SHORTEST_RUN  # the dominant-share rule's own minimum
        for limit in limits:
            if limit < shortest:  # False for NaN, which flags nothing
                shortest = math.ceil(limit) if limit > 1 else 1
        return shortest

    def _units(self, text: str) -> list[tuple[int, int, str]]:
        found = []
        # Exact gates on whitespace-split tokens skip the scans that cannot find a qualifying
        # unit: a repeated unit without a space lies inside one token at least twice its
        # repeats long, and a repeated word or spaced letter unit leaves equal tokens in a row
        # (`_equal_run`). The symbol unit's class also holds \x1c-\x1f, which split()
        # cuts at, so their presence turns its gate off. A row of cells has cells + 1 "|".
        tokens = text.split()
        same = _equal_run(tokens)
        longest = max(map(len, tokens), default=0)
        letters = (
            self.letter_unit_repeats < 3
            or same >= self.letter_unit_repeats - 1
            or longest >= 2 * self.letter_unit_repeats
        )
        symbols = (
            self.symbol_unit_repeats < 2
            or longest >= 2 * self.symbol_unit_repeats
            or _SEPARATORS.search(text) is not None
        )
        for m in _LETTER_UNIT.finditer(text) if letters else ():
            unit = m.group(1)
            repeats = (m.end() - m.start()) // len(unit)
            if repeats >= self.letter_unit_repeats and len(set(unit)) > 1:
                found.append((m.start(), m.end(), f"{repeats}× {unit!r}"))
        for m in _SYMBOL_UNIT.finditer(text) if symbols else ():
            unit = m.group(1)
            repeats = (m.end() - m.start()) // len(unit)
            if (
                repeats >= self.symbol_unit_repeats
                and len(set(unit)) > 1
                and not set(unit) <= _RULES
            ):
                found.append((m.start(), m.end(), f"{repeats}× {unit!r}"))
        for m in _SAME_WORD.finditer(text) if same >= self.word_repeats - 2 else ():
            repeats = len(m.group().split())
            if repeats >= self.word_repeats:
                found.append((m.start(), m.end(), f"{repeats}× {m.group(1)!r}"))
        for m in _EMPTY_CELLS.finditer(text) if text.count("|") > self.empty_cells else ():
            cells = m.group().count("|") - 1
            if cells >= self.empty_cells:
                found.append((m.start(), m.end(), f"{cells} empty table cells"))
        return found


def _run_pattern(shortest: int) -> re.Pattern[str]:
    """Maximal runs of one character, ``shortest`` or longer.

    Exact against scanning every run: where a maximal run is too short, no later start inside
    it is long enough either, so the scan resumes at the next run, as ``(.)\\1*`` would.
    Any character and an exact back-reference mean the same in `re` and `regex`; `re` is faster.
    """
    pattern = _RUNS.get(shortest)
    if pattern is None:
        pattern = _RUNS[shortest] = re.compile(rf"(.)\1{{{shortest - 1},}}", re.DOTALL)
    return pattern


def _equal_run(tokens: list[str]) -> int:
    """The most equal whitespace-split tokens in a row (at least 1 when there are tokens).

    A word repeated n times leaves n - 2 equal tokens in a row at least (the first and last
    copies may touch other text: "(and and and."), and a letter unit holding a space repeated
    n times leaves n - 1 (" a a a", "ab ab ab", "x yx yx y"). Neither pattern matches
    whitespace other than spaces and tabs, where split() also cuts.
    """
    if not any(map(operator.eq, tokens, islice(tokens, 1, None))):
        return 1 if tokens else 0  # the common case, without a Python step per token
    return max(sum(1 for _ in group) for _, group in groupby(tokens))
