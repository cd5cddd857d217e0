"""Punctuation and symbol salad, and outputs that are nothing but whitespace.

NaN or garbage logits often decode to punctuation tokens: ``).\" ⁇ !+,'-$..-.`` (serge#99),
``. with. with.ensens sums sums\\\\\\////…`` (tensorrtllm_backend#234), backslash soup
(ollama#3819), or an endless stream of newlines (TGI#1957). The share of symbols among the
visible characters measures it, against the probe kind's healthy range: prose and lists stay
below 0.36 on the healthy fleet and 0.31 in the clean corpus (math), code below 0.44;
salad starts at 0.56. Markdown's structure characters (``|``,
``-``, ``#``, ``*``, …) and emoji are not counted: a table or a row of 🎉 is not salad.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput
from canary.detectors.metrics import Bins, Metric, continuous, rate
from canary.detectors.registry import register_detector
from canary.detectors.spans import explained, spans_evidence

_MARKDOWN = frozenset("|-#*_>`:")
_SYMBOL = regex.compile(r"[\p{P}\p{S}--\p{Emoji_Presentation}--[\u2600-\u27bf]]", regex.V1)
# The longest stretch of symbols (and spaces between them) is shown as the offending span.
_STRETCH = regex.compile(r"(?:[\p{P}\p{S}][\s\p{P}\p{S}]*){8,}", regex.V1)


_SENTENCE = frozenset(",.;:!?")
_CLEAN = Score("symbol_salad", 0.0)  # frozen: one shared value serves every clean output
# The ASCII characters `_counts` counts, taken from `_SYMBOL` itself, and the sentence marks
# among them that are not counted after a letter or digit when whitespace or the end follows
# (the standard `re`'s \s is str.isspace, and [A-Za-z0-9] is str.isalnum in ASCII).
_ASCII_SYMBOLS = bytes(
    c for c in range(128) if _SYMBOL.match(chr(c)) is not None and chr(c) not in _MARKDOWN
)
_ASCII_WORD_END = re.compile(
    "["
    + re.escape("".join(sorted(_SENTENCE & set(_ASCII_SYMBOLS.decode()))))
    + r"](?<=[A-Za-z0-9].)(?=\s|\Z)"
)


def symbol_share(text: str) -> float | None:
    """Symbols (punctuation and signs, not emoji or markdown) among visible characters.

    Sentence punctuation between a word and a space (``1, 2, 3``, ``end. Next``) is writing,
    not salad, and is not counted.
    """
    visible, symbols = _counts(text)
    return symbols / visible if visible else None


def _counts(text: str) -> tuple[int, int]:
    """(visible characters, symbols among them), as `symbol_share` counts them.

    Only the characters `_SYMBOL` finds are looked at one by one; no symbol is whitespace,
    and ``split()`` cuts at exactly the characters ``isspace()`` calls whitespace.
    """
    visible = sum(map(len, text.split()))
    if text.isascii():
        # The same count without a Python step per symbol: delete the counted ASCII symbols,
        # then give back the sentence punctuation that ends a word.
        raw = text.encode("ascii")
        counted = len(raw) - len(raw.translate(None, _ASCII_SYMBOLS))
        return visible, counted - len(_ASCII_WORD_END.findall(text))
    symbols = 0
    for m in _SYMBOL.finditer(text):
        c = m.group()
        if c in _MARKDOWN:
            continue
        at = m.start()
        if c in _SENTENCE and at > 0 and text[at - 1].isalnum():
            after = text[at + 1 : at + 2]
            if not after or after.isspace():
                continue
        symbols += 1
    return visible, symbols


@register_detector
@dataclass(frozen=True)
class SymbolSaladDetector(Detector):
    """Flags outputs made mostly of symbols, or of whitespace, for the probe's kind."""

    name: ClassVar[str] = "symbol_salad"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "symbol_salad",
            0.005,
            reason="symbol soup is what NaN or garbage logits decode to; healthy answers stay "
            "below the limit, so 0.5% more is a fault",
            explain=explained("symbol_salad", ("reason", "share")),
        ),
        continuous(
            "symbol_share",
            0.05,
            Bins(0.0, 1.0, 100),
            reason="bf16 against fp32 moves a probe's symbol share by far less than 5 points",
        ),
    )

    max_share: tuple[tuple[str, float], ...] = (("code", 0.65), ("*", 0.45))
    """Highest healthy symbol share per probe kind (``*``: every other kind)."""
    min_visible: int = 12
    """Outputs with fewer visible characters are too short to judge ("?", "4.")."""
    max_blank_share: float = 0.75
    """Whitespace above this share of an output of 8 or more characters is an empty answer."""

    def limit(self, kind: str) -> float:
        """The highest healthy symbol share of probes of ``kind``."""
        limits = dict(self.max_share)
        return limits.get(kind, limits.get("*", 1.0))

    def measure(self, inp: ScoringInput) -> list[Score]:
        text = inp.output_text or ""
        visible, symbols = _counts(text)
        share = symbols / visible if visible else None
        blank = len(text) - visible
        if len(text) >= 8 and blank / len(text) > self.max_blank_share:
            evidence = spans_evidence(
                text, [(0, len(text), "whitespace")], reason="blank", share=blank / len(text)
            )
            return [Score("symbol_salad", 1.0, True, evidence), Score("symbol_share", share)]
        limit = self.limit(inp.probe.kind)
        if share is None or visible < self.min_visible or share <= limit:
            return [_CLEAN, Score("symbol_share", share)]
        stretches = [(m.start(), m.end(), "symbols") for m in _STRETCH.finditer(text)]
        stretches.sort(key=lambda s: s[0] - s[1])
        evidence = spans_evidence(
            text,
            stretches[:3] or [(0, len(text), "symbols")],
            reason="symbols",
            share=round(share, 3),
            limit=limit,
        )
        return [Score("symbol_salad", 1.0, True, evidence), Score("symbol_share", share)]
