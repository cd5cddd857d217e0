"""Word salad: a small vocabulary of words shuffled into text with no phrase structure.

Garbage logits over a Latin vocabulary give text every script check passes, such as
``Shux a one can em use long Sh you for long use em Sh one…`` (LLMChat#25 on llama.cpp): few
distinct words (type/token ratio 0.25 over 120 words), recombined at random (87% of its word
bigrams are distinct). Healthy prose uses many distinct words; text that repeats few words
(a list, a refrain, a loop) repeats their pairs too. Only the combination is salad.

A dictionary does not separate them: the healthy simulated fleet's tiny model writes invented
words (up to 67% of its words are in no wordfreq list) while that salad's words are 84% real.
Salad of many real words is the reference-likelihood detector's job (`likelihood`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput
from canary.detectors.metrics import Bins, Metric, continuous, rate
from canary.detectors.registry import register_detector
from canary.detectors.spans import explained, spans_evidence

_WORD = regex.compile(r"\p{L}+")
_ASCII_WORD = re.compile(r"[a-z]+")
_CLEAN = Score("word_salad", 0.0)  # frozen: one shared value serves every clean output
_NO_RATIO = Score("word_type_ratio", None)


def vocabulary_figures(text: str) -> tuple[int, float, float] | None:
    """(words, distinct words / words, distinct word bigrams / bigrams); None without words."""
    if text.isascii():
        # In ASCII, \p{L} is [A-Za-z] and lowering maps letter to letter in place, so lowering
        # first finds the same words, already lowered.
        words = _ASCII_WORD.findall(text.lower())
    else:
        words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 2:
        return None
    pairs = len(words) - 1
    return len(words), len(set(words)) / len(words), len(set(itertools.pairwise(words))) / pairs


@register_detector
@dataclass(frozen=True)
class WordSaladDetector(Detector):
    """Flags text made of few distinct words in ever-new orders."""

    name: ClassVar[str] = "word_salad"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "word_salad",
            0.005,
            reason="no healthy output shuffles a few words; 0.5% more answers doing so is "
            "garbage logits",
            explain=explained("word_salad", ("words", "type_ratio", "bigram_ratio")),
        ),
        continuous(
            "word_type_ratio",
            0.05,
            Bins(0.0, 1.0, 100),
            "two_sided",
            reason="fewer distinct words is looping, more is salad; 5 points on the same probes "
            "is beyond numeric noise",
        ),
    )

    min_words: int = 60
    """Fewer words than this are too few to judge."""
    max_type_ratio: float = 0.35
    """At most this share of the words distinct…"""
    min_bigram_ratio: float = 0.7
    """…while at least this share of the word pairs are: salad."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        figures = vocabulary_figures(inp.output_text or "")
        if figures is None:
            return [_CLEAN, _NO_RATIO]
        words, types, pairs = figures
        ratio = Score("word_type_ratio", types)
        if words < self.min_words or types > self.max_type_ratio or pairs < self.min_bigram_ratio:
            return [_CLEAN, ratio]
        text = inp.output_text or ""
        evidence = spans_evidence(
            text, [(0, len(text), "few words shuffled")], words=words,
            type_ratio=round(types, 3), bigram_ratio=round(pairs, 3),
        )  # fmt: skip
        return [Score("word_salad", 1.0, flagged=True, evidence=evidence), ratio]
