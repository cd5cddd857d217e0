"""A missing logprob is not evidence: topk never raises on one and never flags because of one."""

from __future__ import annotations

import math

from canary.detectors.topk import compare_to_reference, greedy_not_argmax, top1
from canary.records import TokenLogprob

NAN = math.nan
REFERENCE = [
    TokenLogprob("Hello", -0.1, {"Hello": -0.1, "Hi": -3.0}),
    TokenLogprob(" world", -0.2, {" world": -0.2, " there": -2.5}),
]


def test_positions_without_a_chosen_logprob_are_not_judged() -> None:
    endpoint = [
        TokenLogprob("Hello", None, {"Hello": -0.1, "Hi": -3.0}),
        TokenLogprob(" world", None, {" world": -0.2}),
    ]
    assert greedy_not_argmax(endpoint) == (None, None)
    agreement = compare_to_reference(endpoint, REFERENCE, "Hello world", "Hello world")
    assert agreement.method == "logprobs"
    assert agreement.not_argmax is None
    assert agreement.top1_agreement == 1.0 and not agreement.confident_divergence
    assert not any(s.flagged for s in agreement.to_scores())


def test_non_finite_values_handed_in_directly_are_ignored() -> None:
    # A third-party flavour or detector caller may hand these in; the store never would.
    endpoint = [
        TokenLogprob("Hello", NAN, {"Hello": NAN, "Hi": -math.inf, "Hey": -1.0}),
        TokenLogprob(" world", -0.2, {" world": -0.2, " there": NAN}),  # judged: its own argmax
    ]
    assert top1(endpoint[0]) == "Hey"
    share, evidence = greedy_not_argmax(endpoint)
    assert share == 0.0 and evidence is None
    agreement = compare_to_reference(endpoint, REFERENCE, "Hello world", "Hello world")
    values = [s.value for s in agreement.to_scores() if s.value is not None]
    assert values and all(math.isfinite(v) for v in values)


def test_alternatives_that_are_all_missing_fall_back_to_token_agreement() -> None:
    endpoint = [TokenLogprob("Hello", None, {"Hello": NAN}), TokenLogprob(" there", None)]
    agreement = compare_to_reference(endpoint, REFERENCE, "Hello there", "Hello world")
    assert agreement.method == "tokens"
    assert agreement.first_divergence == 1 and agreement.top1_agreement == 0.5


def test_a_reference_with_missing_logprobs_still_compares() -> None:
    reference = [TokenLogprob("Hello", None, {}), TokenLogprob(" world", None, {"x": NAN})]
    endpoint = [TokenLogprob("Hello", -0.1, {"Hello": -0.1}), TokenLogprob(" there", -0.3)]
    agreement = compare_to_reference(endpoint, reference, "Hello there", "Hello world")
    assert agreement.first_divergence == 1
    assert agreement.divergence is not None and agreement.divergence["reference_gap_nats"] is None
    assert not agreement.confident_divergence
