"""Tokenizer markers written out instead of the spaces and newlines they stand for.

A detokenizer that skips the byte-level decode step prints GPT-2's ``Ġ`` (space) and ``Ċ``
(newline) (vLLM-metal#316: ``ĠI'mĠtryingĠto…``); one that skips SentencePiece's prints ``▁``
(llama.cpp#2743), and llama.cpp shows an unknown piece as `` ⁇ ``. Each marker is a real
character too (Maltese writes Ġ and Ċ; sparklines draw ▁), so a marker counts only where it
stands in for a space: inside a run of text, after a lower-case letter, digit or punctuation
(Maltese puts Ġ at a word's start, after a space or a hyphen), or a ▁ that touches a word and
no other block element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput
from canary.detectors.metrics import Metric, rate
from canary.detectors.registry import register_detector
from canary.detectors.spans import explained, spans_evidence

# Ġ (space) and Ċ (newline) of GPT-2's byte-to-unicode table, standing between two characters
# of text, or doubled (its tab, ĉ, is left out: Esperanto writes it inside words).
_BYTE_LEVEL = regex.compile(r"(?<=[\p{Ll}\p{N}\p{P}--[\-'’]])[ĠĊ](?=\S)|[ĠĊ](?=[ĠĊ])", regex.V1)
# SentencePiece's ▁ outside a run of other block elements (U+2580–U+259F), next to a word.
_SENTENCEPIECE = regex.compile(r"(?<![\u2580-\u259f])▁+(?![\u2580-\u259f])")
_WORDPIECE = regex.compile(r"(?<=\w )##\w")  # BERT's continuation marker: "play ##ing"
_UNKNOWN = regex.compile("\u2047")  # ⁇, llama.cpp's rendering of an unknown piece
_CLEAN = Score("tokenizer_marker_leak", 0.0)  # frozen: one shared value serves every clean output


def _touches_word(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end : end + 2]
    return before.isalnum() or after[:1].isalnum() or (after[:1] == " " and after[1:].isalpha())


def find_markers(text: str) -> list[tuple[int, int, str]]:
    """(start, end, what) of every tokenizer marker in ``text`` that replaces a space."""
    found: list[tuple[int, int, str]] = []
    if "##" in text:  # each pattern runs only where its marker occurs at all
        found += [(m.start(), m.end(), "WordPiece continuation") for m in _WORDPIECE.finditer(text)]
    if text.isascii():
        return sorted(found)
    if "Ġ" in text or "Ċ" in text:
        found += [(m.start(), m.end(), "byte-level BPE marker") for m in _BYTE_LEVEL.finditer(text)]
    if "▁" in text:
        found += [
            (m.start(), m.end(), "SentencePiece word marker")
            for m in _SENTENCEPIECE.finditer(text)
            if _touches_word(text, m.start(), m.end())
        ]
    if "\u2047" in text:
        found += [(m.start(), m.end(), "unknown-token marker") for m in _UNKNOWN.finditer(text)]
    return sorted(found)


@register_detector
@dataclass(frozen=True)
class TokenizerMarkerDetector(Detector):
    """Flags outputs where tokenizer markers stand in for spaces or newlines."""

    name: ClassVar[str] = "tokenizer_markers"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "tokenizer_marker_leak",
            0.003,
            critical=True,
            reason="a marker in place of spaces means a decode step was skipped, which breaks "
            "every answer it touches; healthy servers emit none. 0.3% is the smallest rise a "
            "gate can rule out within 4,000 clean probes per side",
            explain=explained("tokenizer_marker_leak", ("markers", "count")),
        ),
    )

    min_markers: int = 1
    """Markers needed to flag."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        text = inp.output_text or ""
        found = find_markers(text)
        if len(found) < self.min_markers:
            return [_CLEAN]
        evidence = spans_evidence(
            text, found, markers=sorted({text[s:e][:1] for s, e, _ in found}), count=len(found)
        )
        return [Score("tokenizer_marker_leak", 1.0, flagged=True, evidence=evidence)]
