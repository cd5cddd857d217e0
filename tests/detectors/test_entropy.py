from __future__ import annotations

import random

import pytest

from canary.detectors.base import Score
from canary.detectors.entropy import (
    EntropyDetector,
    char_entropy,
    distinct_ngram_ratio,
    longest_repeat,
    tokenize,
)
from tests.detectors.inputs import given
from tests.support.scaling import assert_linear

DETECTOR = EntropyDetector()
PROSE = (
    "The harbour was quiet before dawn. A few fishing boats rocked against the pier while "
    "gulls argued over scraps, and the baker on the corner pulled the first loaves from his oven."
)


def metrics(text: str) -> dict[str, Score]:
    return {s.metric: s for s in DETECTOR.score(given(text, "entropy"))}


def test_repeated_char_is_low_entropy_and_degenerate() -> None:
    scores = metrics("a" * 500)
    assert scores["char_entropy"].value == 0.0
    assert scores["compression_ratio"].value is not None
    assert scores["compression_ratio"].value < 0.05
    degenerate = scores["degenerate"]
    assert degenerate.flagged and degenerate.evidence is not None
    assert degenerate.evidence == {
        "reason": "char_run",
        "char": "a",
        "offset": 0,
        "run_length": 500,
    }


def test_random_text_is_high_entropy_and_prose_in_between() -> None:
    rng = random.Random(0)
    noise = "".join(chr(rng.randrange(0x21, 0x7F)) for _ in range(5000))
    noisy, prose = metrics(noise), metrics(PROSE)
    assert noisy["char_entropy"].value == pytest.approx(6.55, abs=0.05)  # log2(94)
    assert 3.5 < (prose["char_entropy"].value or 0) < 4.6
    assert (noisy["compression_ratio"].value or 0) > (prose["compression_ratio"].value or 0)
    assert not noisy["degenerate"].flagged and not prose["degenerate"].flagged
    assert prose["distinct_4gram_ratio"].value == 1.0


def test_empty_and_whitespace_output_is_degenerate() -> None:
    for text in ("", " \n\n "):
        scores = metrics(text)
        assert scores["degenerate"].flagged
        assert scores["degenerate"].evidence == {"reason": "empty", "chars": len(text)}
    assert metrics("")["char_entropy"].value is None


def test_looping_output_is_degenerate_and_repetition_metrics_show_it() -> None:
    scores = metrics("I am sorry. " * 40)
    assert scores["degenerate"].flagged
    assert scores["degenerate"].evidence is not None
    assert scores["degenerate"].evidence["reason"] == "loop"
    assert (scores["longest_repeat_share"].value or 0) > 0.9
    assert (scores["distinct_4gram_ratio"].value or 1) < 0.1


def test_repetition_helpers() -> None:
    assert longest_repeat(["a", "b", "c", "a", "b", "c"]) == 3
    assert longest_repeat(["the", "the", "the", "the"]) == 3
    assert longest_repeat(list("abcd")) == 0
    assert distinct_ngram_ratio(list("abcab"), 2) == 0.75
    assert distinct_ngram_ratio(["a"], 4) is None
    assert tokenize("Hello, 世界!") == ["Hello", ",", "世", "界", "!"]
    assert char_entropy("abab") == 1.0


def test_long_output_uses_hashing_and_agrees_with_the_plain_method() -> None:
    rng = random.Random(1)
    tokens = [rng.choice("abcdefgh") for _ in range(2000)]
    tokens[1500:1530] = tokens[100:130]

    def brute(tokens: list[str]) -> int:
        k = 0
        while len(set(zip(*(tokens[i:] for i in range(k + 1)), strict=False))) < len(tokens) - k:
            k += 1
        return k

    assert longest_repeat(tokens) == brute(tokens) >= 30


def test_one_megabyte_output_is_scored_in_linear_time() -> None:
    """Speed itself: `python -m benchmarks.detectors_speed`."""
    rng = random.Random(2)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "zeta"]
    text = " ".join(rng.choice(words) for _ in range(180_000))
    assert len(text) > 1_000_000
    scores = metrics(text)
    assert not scores["degenerate"].flagged
    assert scores["longest_repeat_share"].value is not None
    assert scores["longest_repeat_share"].value < 0.001
    assert_linear(metrics, text[: len(text) // 8], text, k=8)
