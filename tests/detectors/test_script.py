from __future__ import annotations

import pytest

from canary.detectors.base import Score
from canary.detectors.script import ScriptDetector, validate_scripts
from canary.errors import ConfigError
from tests.detectors.inputs import given
from tests.support.scaling import assert_linear

DETECTOR = ScriptDetector()


def metrics(text: str, **expect: object) -> dict[str, Score]:
    return {s.metric: s for s in DETECTOR.score(given(text, **expect))}


def test_thai_inside_english_is_flagged_with_its_span() -> None:
    text = "The capital of France is Paris. สวัสดี It is on the Seine."
    scores = metrics(text)
    flag = scores["unexpected_script"]
    assert flag.flagged and flag.value == 1.0
    assert flag.evidence is not None
    (span,) = flag.evidence["spans"]
    assert span["script"] == "Thai"
    assert span["text"] == "สวัสดี"
    assert text[span["start"] : span["end"]] == "สวัสดี"
    assert "Paris." in span["context"] and "It is" in span["context"]
    assert scores["unexpected_char_fraction"].value == pytest.approx(6 / len(text))


def test_han_inside_english_is_flagged() -> None:
    flag = metrics("Use a list comprehension 列表 for this.")["unexpected_script"]
    assert flag.flagged
    assert flag.evidence is not None and flag.evidence["scripts"] == ["Han"]


@pytest.mark.parametrize(
    "text",
    [
        "Great job! 🎉👍🏽 See you 👨‍👩‍👧 soon 🇫🇷",
        "A naïve café in Zürich — “déjà vu”, ½ price, 5 € or £4 ±1°C ™",
        "x² + y² ≤ r², aside; → ← ✓ • … «quoted» 5µm ±0.1",
        "π ≈ 3.14159, the α-helix, Δ = b² − 4ac",
        "",
    ],
)
def test_emoji_symbols_and_accented_latin_are_not_flagged(text: str) -> None:
    scores = metrics(text)
    assert not scores["unexpected_script"].flagged
    assert not scores["mojibake"].flagged


def test_greek_words_and_greek_homoglyphs_are_flagged_unless_declared() -> None:
    assert metrics("καλημέρα means good morning")["unexpected_script"].flagged
    assert metrics("hellο world")["unexpected_script"].flagged  # U+03BF GREEK SMALL OMICRON
    declared = metrics("καλημέρα means good morning", scripts=["Latin", "Greek", "Common"])
    assert not declared["unexpected_script"].flagged
    strict = ScriptDetector(lone_letters_ok=())
    assert any(s.flagged for s in strict.score(given("π ≈ 3.14")))


def test_cyrillic_homoglyph_inside_english_word_is_flagged() -> None:
    text = "Enter your pаssword below."  # U+0430 CYRILLIC SMALL LETTER A
    flag = metrics(text)["unexpected_script"]
    assert flag.flagged and flag.evidence is not None
    (span,) = flag.evidence["spans"]
    assert span == {**span, "start": 12, "end": 13, "script": "Cyrillic", "in_word": True}


def test_declared_han_probe_is_not_flagged_for_han_but_is_for_thai() -> None:
    chinese = "北京是中国的首都。它有三千多年的历史！"
    assert not metrics(chinese, scripts=["Han", "Common"])["unexpected_script"].flagged
    mixed = metrics(chinese + "สวัสดี", scripts=["Han", "Common"])["unexpected_script"]
    assert mixed.flagged and mixed.evidence is not None
    assert mixed.evidence["scripts"] == ["Thai"]
    assert mixed.evidence["expected"] == ["Common", "Han", "Inherited"]  # Inherited implied


def test_spans_are_split_by_script_and_capped() -> None:
    text = " ".join(["word สวัสดี word 世界"] * 30)
    flag = metrics(text)["unexpected_script"]
    assert flag.evidence is not None
    assert len(flag.evidence["spans"]) == DETECTOR.max_spans
    assert flag.evidence["spans_total"] > DETECTOR.max_spans
    assert flag.evidence["unexpected_chars"] == 30 * 8
    assert [s["script"] for s in flag.evidence["spans"][:2]] == ["Thai", "Han"]


def test_mojibake_replacement_and_control_chars_are_flagged() -> None:
    bad = metrics("The cafÃ© was â€œniceâ€ today.")["mojibake"]
    assert bad.flagged and bad.evidence is not None
    assert bad.evidence["reasons"][0]["reason"] == "mojibake"
    assert "café" in bad.evidence["reasons"][0]["fixed"]
    replaced = metrics("broken \ufffd byte")["mojibake"]
    assert replaced.flagged and replaced.evidence is not None
    assert replaced.evidence["reasons"][0] == {**replaced.evidence["reasons"][0], "offset": 7}
    assert metrics("nul\x00 inside")["mojibake"].flagged
    assert not metrics("tabs\tand\nnewlines\r\n")["mojibake"].flagged


def test_failed_requests_are_not_scored() -> None:
    assert DETECTOR.score(given(None, error_kind="timeout")) == []


def test_unknown_script_name_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'Cyrillic'"):
        validate_scripts(["Cyrilic"])
    with pytest.raises(ConfigError):
        metrics("text", scripts=["Klingon"])


def test_one_megabyte_output_is_scored_in_linear_time() -> None:
    """Speed itself: `python -m benchmarks.detectors_speed`."""
    text = ("All quiet on the western front. " * 32_000) + "สวัสดี"
    assert len(text) > 1_000_000
    scores = metrics(text)
    assert scores["unexpected_script"].flagged
    assert_linear(metrics, ("All quiet on the western front. " * 4_000) + "สวัสดี", text, k=8)


def test_a_character_cut_by_max_tokens_is_not_mojibake() -> None:
    cut = "東京は大きな都市で、多くの人が住んで\ufffd"
    scores = {
        s.metric: s for s in DETECTOR.score(given(cut, finish_reason="length", scripts="Han"))
    }
    assert not scores["mojibake"].flagged
    # The same ending without the cut, or a replacement character before the end, is corruption.
    assert {s.metric: s for s in DETECTOR.score(given(cut, scripts="Han"))}["mojibake"].flagged
    inside = "我无法\ufffd\ufffd问实时数据\ufffd"
    flagged = DETECTOR.score(given(inside, finish_reason="length", scripts="Han"))
    assert {s.metric: s for s in flagged}["mojibake"].flagged


def test_a_declared_script_implies_common_and_inherited() -> None:
    text = "The answer is 42, naïve café: 6 × 7 = 42."
    assert not metrics(text, scripts=["Latin"])["unexpected_script"].flagged
    assert not metrics("42 ± 1 %", scripts="Latin")["unexpected_script"].flagged
    assert metrics("Hello สวัสดี", scripts=["Latin"])["unexpected_script"].flagged
