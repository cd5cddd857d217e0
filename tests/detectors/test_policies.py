"""The per-output detectors run on every probe kind and declare a policy for every metric
they store, so compare, baselines, alerts and reports test them like the built-ins."""

from __future__ import annotations

import math

import pytest

from canary.detectors import declared_metrics, default_detector, score_all
from canary.detectors.likelihood import ReferenceLikelihood, mean_nll
from tests.detectors.inputs import given

NEW = {
    "special_tokens": {"special_token_leak"},
    "tokenizer_markers": {"tokenizer_marker_leak"},
    "repetition": {"repetition", "repeated_share"},
    "symbol_salad": {"symbol_salad", "symbol_share"},
    "word_salad": {"word_salad", "word_type_ratio"},
    "likelihood": {"reference_nll", "implausible_text"},
}


def test_every_stored_metric_is_declared_with_a_policy() -> None:
    declared = declared_metrics()
    for name, metrics in NEW.items():
        detector = default_detector(name)
        assert {m.name for m in detector.metrics} == metrics, name
        for metric in detector.metrics:
            assert declared[metric.name] is metric
            assert metric.margin > 0 and metric.reason
            assert metric.kind in ("rate", "continuous")
            assert metric.kind == "rate" or metric.binning is not None
    assert declared["special_token_leak"].critical and declared["tokenizer_marker_leak"].critical


@pytest.mark.parametrize("kind", ["generic", "script", "code", "fixed", "entropy", "topk"])
def test_they_score_every_probe_kind(kind: str) -> None:
    expect = {"answer": "x"} if kind == "fixed" else {}
    scored = {spec.name for spec, _ in score_all(given("Fine.<|eot_id|>", kind, **expect))}
    assert {"special_tokens", "tokenizer_markers", "repetition", "symbol_salad"} <= scored
    stored = {s.metric for name in NEW for s in default_detector(name).score(given("ok", kind))}
    for name, metrics in NEW.items():
        assert {s.metric for s in default_detector(name).score(given("ok", kind))} <= metrics
    assert stored


def test_reference_likelihood_is_mean_nll_and_flags_implausible_text() -> None:
    assert mean_nll([-1.0, -3.0, None, float("nan")]) == pytest.approx(2.0)
    assert mean_nll([]) is None
    detector = ReferenceLikelihood()
    assert detector.reference and detector.score(given("any text", "generic")) == []
    fluent = {s.metric: s for s in detector.score_logprobs([-0.5] * 20)}
    salad = {s.metric: s for s in detector.score_logprobs([-9.0] * 20)}
    short = {s.metric: s for s in detector.score_logprobs([-9.0] * 3)}
    assert not fluent["implausible_text"].flagged and fluent["reference_nll"].value == 0.5
    assert salad["implausible_text"].flagged and salad["reference_nll"].value == 9.0
    assert not short["implausible_text"].flagged
    assert math.isclose(salad["implausible_text"].evidence["nll"], 9.0)  # type: ignore[index]
