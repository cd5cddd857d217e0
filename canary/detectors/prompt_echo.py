"""The prompt's own tail written again at the start of the output: a detokenizer offset bug.

vLLM#48853: when a prompt's last character is split across tokens (Thai and CJK characters are
several byte-level tokens), an incremental detokenizer seeded with the prompt's last tokens at
the wrong read offset emits the decoded prompt tail before the completion. The output then
begins with the last characters of the prompt, often after a U+FFFD where the seeded window
started inside a character. A model repeating the prompt's last word is not the same thing, so
the echo must be longer than that: `min_chars` characters, or `min_wide` characters of scripts
written without spaces (Thai, Han, kana, Hangul), where a single leaked character is already a
whole word and a healthy continuation rarely restarts the prompt's last characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput
from canary.detectors.metrics import Metric, rate
from canary.detectors.registry import register_detector
from canary.detectors.spans import explained, spans_evidence

_WIDE = regex.compile(r"[\p{Thai}\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
_REPLACEMENT = "\ufffd"
_CLEAN = Score("prompt_echo", 0.0)  # frozen: one shared value serves every clean output


def echoed_tail(prompt: str, output: str) -> tuple[int, int]:
    """(start, end) in ``output`` of the longest prompt suffix it begins with, after any U+FFFD.

    ``(0, 0)`` when the output does not begin with the prompt's last character.
    """
    start = len(output) - len(output.lstrip(_REPLACEMENT))
    rest = output[start:]
    if not rest or not prompt:
        return (0, 0)
    # The longest suffix that matches starts earliest in the prompt, and every suffix that can
    # match starts with ``rest[0]``: try those starts, earliest first.
    first = rest[0]
    at = prompt.find(first, max(0, len(prompt) - len(rest)))
    while at >= 0:
        if rest.startswith(prompt[at:]):
            return (start, start + len(prompt) - at)
        at = prompt.find(first, at + 1)
    return (0, 0)


@register_detector
@dataclass(frozen=True)
class PromptEchoDetector(Detector):
    """Flags an output that begins with a non-trivial tail of its own prompt."""

    name: ClassVar[str] = "prompt_echo"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "prompt_echo",
            0.003,
            critical=True,
            reason="users see their own prompt again before the answer; healthy servers "
            "never write it. 0.3% is the smallest rise a gate can rule out within 4,000 clean "
            "probes per side",
            explain=explained("prompt_echo", ("echoed", "chars")),
        ),
    )

    min_chars: int = 8
    """Echoed characters that flag an output, whatever their script."""
    min_wide: int = 2
    """Echoed Thai/Han/kana/Hangul characters that flag an output on their own."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        text = inp.output_text or ""
        prompt = inp.probe.as_prompt()
        start, end = echoed_tail(prompt, text)
        span = text[start:end]
        if not span:
            return [_CLEAN]
        wide = len(_WIDE.findall(span))
        if len(span) < self.min_chars and wide < self.min_wide:
            return [_CLEAN]
        evidence = spans_evidence(text, [(0, end, "prompt tail")], echoed=span, chars=len(span))
        return [Score("prompt_echo", 1.0, flagged=True, evidence=evidence)]
