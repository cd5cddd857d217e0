from __future__ import annotations

import pytest

from canary.detectors.base import Score
from canary.detectors.fixed import FixedDetector, first_choice
from canary.errors import ConfigError
from tests.detectors.inputs import given

DETECTOR = FixedDetector()


def failed(text: str, **expect: object) -> Score:
    (result,) = DETECTOR.score(given(text, "fixed", **expect))  # type: ignore[arg-type]
    assert result.metric == "fixed_fail"
    return result


@pytest.mark.parametrize(
    ("text", "expect", "wrong"),
    [
        ("  Paris \n", {"exact": "Paris"}, False),
        ("paris", {"exact": "Paris"}, False),
        ("paris", {"exact": "Paris", "case_sensitive": True}, True),
        ("Paris.", {"exact": "Paris"}, True),
        ("42", {"exact": ["42", "forty-two"]}, False),
        ("The answer is 42, clearly.", {"contains": "42"}, False),
        ("Red, green and BLUE", {"contains": ["red", "blue"]}, False),
        ("Red and green", {"contains": ["red", "blue"]}, True),
        ("Red and green", {"contains": ["red", "Green"], "case_sensitive": True}, True),
        ("2024-05-17", {"regex": r"^\d{4}-\d{2}-\d{2}$"}, False),
        ("17/05/2024", {"regex": r"^\d{4}-\d{2}-\d{2}$"}, True),
        (
            "It is B, because…",
            {"choice": ["A", "B", "C"], "answer": "B", "case_sensitive": True},
            False,
        ),
        ("A is wrong; B is right", {"choice": ["A", "B", "C"], "answer": "B"}, True),
        ("Nothing useful", {"choice": ["yes", "no"], "answer": "yes"}, True),
        ("Yes, it is prime.", {"choice": ["yes", "no"], "answer": "yes"}, False),
        ("A short answer", {"not_contains": ["As an AI", "sorry"]}, False),
        ("Sorry, I can't", {"not_contains": ["As an AI", "sorry"]}, True),
        ("7", {"exact": "7", "not_contains": "8"}, False),
    ],
)
def test_each_mode(text: str, expect: dict[str, object], wrong: bool) -> None:
    result = failed(text, **expect)
    assert result.flagged is wrong
    assert result.value == (1.0 if wrong else 0.0)


def test_evidence_has_expected_and_got() -> None:
    result = failed("The capital is Lyon. " * 40, contains=["Paris"], exact="Paris")
    assert result.evidence is not None
    assert {f["check"] for f in result.evidence["failed"]} == {"contains", "exact"}
    assert result.evidence["failed"][0]["expected"] == ["Paris"]
    assert result.evidence["got"].startswith("The capital is Lyon.")
    assert len(result.evidence["got"]) <= DETECTOR.got_limit


def test_choice_matches_whole_words_longest_first() -> None:
    assert first_choice(["no", "yes"], "Nobody knows: yes.", case_sensitive=False) == "yes"
    assert first_choice(["New York", "New York City"], "New York City!", False) == "New York City"


def test_probe_without_checks_is_not_scored_and_bad_config_is_loud() -> None:
    assert DETECTOR.score(given("x", "fixed")) == []
    with pytest.raises(ConfigError, match="answer"):
        failed("A", choice=["A", "B"])
    with pytest.raises(ConfigError, match="regex"):
        failed("A", regex="(unclosed")
