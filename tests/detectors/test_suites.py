"""The shipped suites load, and their checks accept right answers and reject wrong ones."""

from __future__ import annotations

import pytest

from canary.detectors import ScoringInput, score_all
from canary.detectors.code import LANGUAGE_TAGS
from canary.detectors.fixed import CHECKS
from canary.detectors.script import expected_scripts, validate_scripts
from canary.probes import Suite, load_suite

#: A right answer, as a model might phrase it, for every probe of the fixed suite.
RIGHT = {
    "arith-mul": "391",
    "arith-div": "12",
    "arith-pow": "1024",
    "arith-sub": "613",
    "arith-percent": "12",
    "arith-speed": "80 km/h",
    "arith-sum": "55",
    "arith-sequence": "42",
    "fact-capital-au": "Canberra",
    "fact-gold": "Au",
    "fact-planets": "Eight.",
    "fact-austen": "Jane Austen",
    "fact-boiling": "100",
    "fact-ocean": "The Pacific Ocean.",
    "fact-hexagon": "6",
    "fact-ww2": "1945",
    "fact-hydrogen": "Hydrogen",
    "fact-romeo": "William Shakespeare",
    "format-ok": "OK",
    "format-reverse": "ananab",
    "format-sort": "apple, mango, pear",
    "format-iso-date": "2024-03-05",
    "format-upper": "HELLO WORLD",
    "format-json": '{"ok": true}',
    "format-words": "forty-two",
    "format-colors": "red, green, blue",
    "choice-prime": "Yes",
    "choice-ocean": "Yes.",
    "choice-square": "No",
    "choice-mammal": "B",
    "choice-red-planet": "C) Mars",
    "choice-freezing": "B",
    "instr-translate": "Merci",
    "instr-opposite": "Cold",
    "instr-no-apology": "Banana",
}
WRONG = {"arith-percent": "12.5", "arith-mul": "3910", "choice-mammal": "A", "format-ok": "ok"}

SUITES = ("fixed", "code", "script", "entropy")


@pytest.fixture(scope="module")
def suites() -> dict[str, Suite]:
    return {name: load_suite(name) for name in SUITES}


def test_suites_load_with_their_kind_and_a_useful_size(suites: dict[str, Suite]) -> None:
    for name, suite in suites.items():
        assert 15 <= len(suite.probes) <= 40, name
        assert {p.kind for p in suite.probes} == {name}
        for probe in suite.probes:
            if "sampled" not in probe.tags:
                assert probe.params.temperature == 0.0, probe.id


def test_fixed_suite_checks_accept_right_answers(suites: dict[str, Suite]) -> None:
    probes = suites["fixed"].probes
    assert {p.id for p in probes} == set(RIGHT)
    for probe in probes:
        assert any(check in probe.expect for check in CHECKS), probe.id
        for text, wrong in ((RIGHT[probe.id], False), ("I don't know.", True)):
            scores = [s for spec, s in score_all(ScoringInput(probe, text)) if spec.name == "fixed"]
            assert [s.flagged for s in scores] == [wrong], (probe.id, text, scores)
    for probe_id, text in WRONG.items():
        probe = suites["fixed"].probe(probe_id)
        assert any(s.flagged for _, s in score_all(ScoringInput(probe, text), names=["fixed"]))


def test_code_and_script_expectations_are_valid(suites: dict[str, Suite]) -> None:
    for probe in suites["code"].probes:
        assert probe.expect["language"] in LANGUAGE_TAGS, probe.id
    declared = 0
    for probe in suites["script"].probes:
        scripts = expected_scripts(probe.expect, ())
        validate_scripts(scripts)
        declared += scripts != {"Latin", "Common", "Inherited"}
        # Each probe's own prompt is in its declared scripts: a good sanity check for the data.
        prompt = "".join(m.content for m in probe.as_messages())
        results = score_all(ScoringInput(probe, prompt), names=["script"])
        assert not any(s.flagged for _, s in results), (probe.id, results)
    assert declared >= 5
