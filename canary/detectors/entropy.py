"""How much information the text carries: entropy, compressibility and repetition.

These are values, not verdicts: a wrong sampler shifts their distribution (flatter or peakier
text, loops), which statistics compare against a baseline cohort. Only absolutely degenerate
output is flagged here: nothing at all, one character repeated many times, or a loop that fills
the text.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import regex

from canary.detectors.base import Detector, Score, ScoringInput, clip
from canary.detectors.metrics import Bins, Metric, continuous, rate
from canary.detectors.registry import register_detector

# Words, punctuation marks, and single characters of scripts written without spaces.
_TOKENS = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]|\w+|[^\w\s]"
)
_ASCII_TOKENS = re.compile(r"\w+|[^\w\s]")  # same tokens for ASCII text, and faster
# Above this many tokens, repeats are found with vectorised rolling hashes.
_HASH_THRESHOLD = 256
DEGENERATE_WHY = (
    "a healthy model loops on about 1 in 1,000 answers; 0.5% more is a decoding fault users see"
)
ENTROPY_WHY = (
    "bf16 against fp32 moves these by a few hundredths; a shift beyond the margin either way is "
    "corruption (up) or repetition (down)"
)
_BASE = 1_000_003
# c * log2(c) for the character counts short texts have.
_XLOGX = tuple(c * math.log2(c) if c else 0.0 for c in range(1024))
_MASK = (1 << 64) - 1
_CLEAN = Score("degenerate", 0.0)  # frozen: one shared value serves every clean output


def char_entropy(text: str) -> float:
    """Shannon entropy of the character distribution, in bits per character (0 for "")."""
    return _entropy_of_counts(Counter(text).values(), len(text))


def _entropy_of_counts(counts: Collection[int], n: int) -> float:
    if n == 0:
        return 0.0
    if max(counts) < len(_XLOGX):  # the same products, looked up rather than recomputed
        total = sum(map(_XLOGX.__getitem__, counts))
    else:
        total = sum(c * math.log2(c) for c in counts)
    return max(0.0, math.log2(n) - total / n)


def compression_ratio(text: str) -> float | None:
    """zlib-compressed size / UTF-8 size; lower means more repetitive. `None` for ""."""
    raw = text.encode("utf-8", "surrogatepass")
    if not raw:
        return None
    return len(zlib.compress(raw, 6)) / len(raw)


def tokenize(text: str) -> list[str]:
    """Words and punctuation; CJK and Thai-like scripts one character per token."""
    return (_ASCII_TOKENS if text.isascii() else _TOKENS).findall(text)


def distinct_ngram_ratio(tokens: Sequence[str], n: int = 4) -> float | None:
    """Distinct n-grams / all n-grams (1 = no repeats); `None` below n tokens."""
    count = len(tokens) - n + 1
    if count <= 0:
        return None
    return len(set(zip(*(tokens[i:] for i in range(n)), strict=False))) / count


def longest_repeat(tokens: Sequence[str]) -> int:
    """Length of the longest token n-gram that occurs at least twice (occurrences may overlap)."""
    n = len(tokens)
    if n < 2:
        return 0
    has_repeat = _hashed_repeat(tokens) if n > _HASH_THRESHOLD else _set_repeat(tokens)
    if not has_repeat(1):
        return 0
    low, high = 1, 2  # gallop: low repeats, find a high that does not
    while high < n and has_repeat(high):
        low, high = high, min(n, high * 2)
    if high >= n:
        high = n
    while high - low > 1:
        mid = (low + high) // 2
        if has_repeat(mid):
            low = mid
        else:
            high = mid
    return low


@register_detector
@dataclass(frozen=True)
class EntropyDetector(Detector):
    """Scores entropy, compressibility and repetition; flags degenerate output."""

    name: ClassVar[str] = "entropy"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"entropy", "sampling", "determinism"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate("degenerate", 0.005, reason=DEGENERATE_WHY),
        # Both directions are faults: corruption raises entropy, degenerate repetition lowers it.
        continuous("char_entropy", 0.1, Bins(0.0, 8.0, 160), "two_sided", reason=ENTROPY_WHY),
        continuous("compression_ratio", 0.02, Bins(0.0, 1.5, 150), "two_sided", reason=ENTROPY_WHY),
    )

    ngram: int = 4
    """n of the distinct-n-gram ratio."""
    max_char_run: int = 50
    """A single character repeated more than this many times in a row is degenerate."""
    loop_share: float = 0.9
    """A repeated n-gram at least this share of the tokens is a degenerate loop…"""
    loop_min_tokens: int = 32
    """…when the output has at least this many tokens."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        text = inp.output_text or ""
        tokens = tokenize(text)
        repeat = longest_repeat(tokens)
        repeat_share = repeat / len(tokens) if tokens else None
        if self.ngram >= 1 and repeat < self.ngram and len(tokens) >= self.ngram:
            distinct: float | None = 1.0  # no n-gram repeats: every one is distinct
        else:
            distinct = distinct_ngram_ratio(tokens, self.ngram)
        counts = Counter(text).values()
        return [
            Score("char_entropy", _entropy_of_counts(counts, len(text)) if text else None),
            Score("compression_ratio", compression_ratio(text)),
            Score(f"distinct_{self.ngram}gram_ratio", distinct),
            Score("longest_repeat_share", repeat_share),
            self._degenerate(text, tokens, repeat, max(counts, default=0)),
        ]

    def _degenerate(self, text: str, tokens: list[str], repeat: int, most: int) -> Score:
        """``most``: the count of the commonest character; no run is longer, so at most
        `max_char_run` of it needs no search for one."""
        evidence: dict[str, Any] | None = None
        if not text.strip():
            evidence = {"reason": "empty", "chars": len(text)}
        elif most > self.max_char_run and (run := _char_run(self.max_char_run).search(text)):
            evidence = {
                "reason": "char_run",
                "char": run.group(1),
                "offset": run.start(),
                "run_length": _run_length(text, run.start()),
            }
        elif len(tokens) >= self.loop_min_tokens and repeat / len(tokens) >= self.loop_share:
            evidence = {
                "reason": "loop",
                "repeated_tokens": repeat,
                "tokens": len(tokens),
                "tail": clip(text[-200:]),
            }
        if evidence is None:
            return _CLEAN
        return Score("degenerate", 1.0, flagged=True, evidence=evidence)


_RUN_PATTERNS: dict[int, re.Pattern[str]] = {}


def _char_run(longer_than: int) -> re.Pattern[str]:
    pattern = _RUN_PATTERNS.get(longer_than)
    if pattern is None:
        pattern = _RUN_PATTERNS[longer_than] = re.compile(rf"(.)\1{{{longer_than},}}", re.DOTALL)
    return pattern


def _run_length(text: str, start: int) -> int:
    rest = text[start:]
    return len(rest) - len(rest.lstrip(rest[0]))


def _set_repeat(tokens: Sequence[str]) -> Any:
    def has_repeat(k: int) -> bool:
        if k == 1:  # 1-grams are distinct exactly when their tokens are
            return len(set(tokens)) < len(tokens)
        grams = zip(*(tokens[i:] for i in range(k)), strict=False)
        return len(set(grams)) < len(tokens) - k + 1

    return has_repeat


def _hashed_repeat(tokens: Sequence[str]) -> Any:
    """Polynomial rolling hashes mod 2**64: window hash = (H[i+k] - H[i]) * base**-i."""
    table: dict[str, int] = {}
    ids = np.fromiter(
        (table.setdefault(t, len(table) + 1) for t in tokens), dtype=np.uint64, count=len(tokens)
    )
    n = len(ids)
    with np.errstate(over="ignore"):
        powers = np.concatenate(([np.uint64(1)], np.cumprod(np.full(n - 1, _BASE, np.uint64))))
        inverse = pow(_BASE, -1, 1 << 64)
        inv_powers = np.concatenate(
            ([np.uint64(1)], np.cumprod(np.full(n - 1, inverse & _MASK, np.uint64)))
        )
        prefix = np.concatenate(([np.uint64(0)], np.cumsum(ids * powers, dtype=np.uint64)))

    def has_repeat(k: int) -> bool:
        with np.errstate(over="ignore"):
            windows = (prefix[k:] - prefix[:-k]) * inv_powers[: n - k + 1]
        return len(np.unique(windows)) < len(windows)

    return has_repeat
