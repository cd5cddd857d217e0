"""Character runs, short loops and symbol salad, with limits above healthy text."""

from __future__ import annotations

import random

import pytest

from canary.detectors import default_detector
from canary.detectors.salad import symbol_share
from canary.detectors.wordsalad import vocabulary_figures
from tests.detectors.inputs import given


def flags(name: str, text: str, kind: str = "generic") -> dict[str, bool]:
    return {s.metric: s.flagged for s in default_detector(name).score(given(text, kind))}


@pytest.mark.parametrize(
    "text",
    [
        "!!!!!!!!!!!!!!",
        "@@@@@@@@@@@@@@@@@",
        "Step 1:1" + "0" * 40,
        "OfOfOfOfOfOfOfOfOfOfOfOfOfOfOfOf",
        "metryryryryryryryryryryryryryryry ",
        "chef in " + "a " * 30,
        "It is " + "and " * 10 + "so on.",
        "| Mandatory. |" + "  |" * 10 + " done",
        ",,In,<<,<<,<<,<<,<<,<<,",
        "Sure" + "\n" * 45,
    ],
)
def test_loops_no_healthy_model_writes_are_flagged(text: str) -> None:
    assert flags("repetition", text)["repetition"], text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Hahaha, nooooo way!", "generic"),
        ("Row, row, row your boat, merrily, merrily, merrily, merrily.", "generic"),
        ("Summary\n=======\n\n" + "-" * 100 + "\nDone.", "generic"),
        (
            "mask = 0xFFFFFFFFFFFFFFFF\nbuf = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]",
            "code",
        ),
        ("\n".join(f"7 x {i} = {7 * i}" for i in range(1, 13)), "generic"),
        ("a,b,,,,,,,,,,,,c\n1,2,,,,,,,,,,,,3", "generic"),
        ("Great job! 🎉🎉🎉🔥🔥🔥🔥🔥", "generic"),
        ("The zero matrix:\n0 0 0 0 0 0 0 0 0 0\n0 0 0 0 0 0 0 0 0 0", "generic"),
    ],
)
def test_legitimate_repetition_is_not_flagged(text: str, kind: str) -> None:
    assert not flags("repetition", text, kind)["repetition"], text


def test_the_evidence_shows_the_longest_repeat() -> None:
    [flag, share] = default_detector("repetition").score(given("ok " + "!" * 20, "generic"))
    assert flag.evidence is not None and flag.evidence["spans"][0]["start"] == 3
    assert share.metric == "repeated_share" and share.value == pytest.approx(20 / 23)


def test_symbol_salad_against_the_kinds_healthy_range() -> None:
    salad = ").\" ⁇ !+,'-$..-. (). (). (()). ()). (()). (())"
    assert flags("symbol_salad", salad)["symbol_salad"]
    assert flags("symbol_salad", "\n" * 10 + "...")["symbol_salad"]
    regex_code = 'EMAIL = re.compile(r"^[\\w.+-]+@[\\w-]+\\.[\\w.-]+$")'
    assert flags("symbol_salad", regex_code, "generic")["symbol_salad"]
    assert not flags("symbol_salad", regex_code, "code")["symbol_salad"]
    assert not flags("symbol_salad", "| a | b |\n|---|---|\n| 1 | 2 |")["symbol_salad"]
    assert not flags("symbol_salad", "?!")["symbol_salad"]


def test_sentence_punctuation_is_writing_not_symbols() -> None:
    assert symbol_share("1, 2, 3, 4, 5, 6.") == 0.0
    assert symbol_share(",,In,<<,<<") == pytest.approx(8 / 10)


def test_word_salad_is_few_words_in_ever_new_orders() -> None:
    words = [
        "you",
        "can",
        "use",
        "one",
        "long",
        "message",
        "help",
        "write",
        "a",
        "response",
        "they",
    ]
    pick = random.Random(3)
    salad = " ".join(pick.choice(words) for _ in range(90))
    loop = " ".join(["the time", "the time"] * 40)
    prose = " ".join(
        f"{a}{b}" for a in ("alpha", "beta", "gamma", "delta") for b in "abcdefghijklmnopqrst"
    )
    assert flags("word_salad", salad)["word_salad"]
    assert not flags("word_salad", loop)["word_salad"]
    assert not flags("word_salad", prose)["word_salad"]
    figures = vocabulary_figures(salad)
    assert figures is not None and figures[1] < 0.35 < 0.7 < figures[2]
