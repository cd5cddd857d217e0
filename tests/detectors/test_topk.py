from __future__ import annotations

import math

import pytest

from canary.detectors.topk import (
    compare_to_reference,
    first_divergence,
    greedy_not_argmax,
    logprob_gap,
    shared_topk_kl,
    text_prefix_agreement,
    top1_agreement,
)
from canary.records import TokenLogprob


def position(chosen: str, **top: float) -> TokenLogprob:
    """A position that chose ``chosen``; ``top`` gives probabilities (converted to logprobs)."""
    logs = {token: math.log(p) for token, p in top.items()}
    return TokenLogprob(token=chosen, logprob=logs.get(chosen), top=logs)


REFERENCE = [
    position("The", The=0.95, A=0.05),
    position(" cat", **{" cat": 0.7, " dog": 0.2, " cow": 0.1}),
    position(" sat", **{" sat": 0.92, " ran": 0.08}),
    position(".", **{".": 0.6, "!": 0.4}),
]


def test_identical_tokens_agree_fully_with_zero_kl() -> None:
    result = compare_to_reference(REFERENCE, REFERENCE)
    assert result.method == "logprobs"
    assert result.positions == 4
    assert result.top1_agreement == 1.0
    assert result.first_divergence is None
    assert result.ref_top1_in_topk == 1.0
    assert result.mean_logprob_gap == 0.0
    assert result.mean_kl == pytest.approx(0.0, abs=1e-12)
    assert result.prefix_agreement == 1.0
    assert not result.confident_divergence
    scores = {s.metric: s for s in result.to_scores()}
    assert scores["top1_agreement"].value == 1.0 and not scores["first_divergence"].flagged


def test_dropped_top_token_diverges_at_that_index() -> None:
    # At position 2 the endpoint's top-k lost " sat" (p=0.92) and it emitted " ran".
    endpoint = [*REFERENCE[:2], position(" ran", **{" ran": 0.6, " sits": 0.4}), REFERENCE[3]]
    assert top1_agreement(endpoint, REFERENCE) == [True, True, False, True]
    result = compare_to_reference(endpoint, REFERENCE)
    assert result.first_divergence == 2
    assert result.top1_agreement == 0.75
    assert result.ref_top1_in_topk == 0.75
    assert result.confident_divergence  # the reference was 92% sure
    assert result.divergence is not None
    assert result.divergence["endpoint_token"] == " ran"
    assert result.divergence["reference_top1"] == " sat"
    assert result.divergence["before"] == "The cat"
    assert logprob_gap(endpoint[2], REFERENCE[2]) is None  # " sat" fell out of the top-k
    scores = {s.metric: s for s in result.to_scores()}
    assert scores["first_divergence"].value == 2.0 and scores["first_divergence"].flagged


def test_logprob_gap_and_kl_on_shifted_distribution() -> None:
    endpoint = position(" dog", **{" cat": 0.3, " dog": 0.6, " cow": 0.1})
    assert logprob_gap(endpoint, REFERENCE[1]) == pytest.approx(math.log(0.6 / 0.3))
    expected = sum(p * math.log(p / q) for p, q in ((0.7, 0.3), (0.2, 0.6), (0.1, 0.1)))
    assert shared_topk_kl(endpoint, REFERENCE[1]) == pytest.approx(expected)
    # Only tokens both lists hold count, renormalised on each side.
    partial = position(" cat", **{" cat": 0.5, " dog": 0.5, " emu": 0.0001})
    p_cat, p_dog = 0.7 / 0.9, 0.2 / 0.9
    assert shared_topk_kl(partial, REFERENCE[1]) == pytest.approx(
        p_cat * math.log(p_cat / 0.5) + p_dog * math.log(p_dog / 0.5)
    )
    assert shared_topk_kl(position("x", x=1.0), REFERENCE[1]) is None


def test_endpoint_stopping_early_diverges_at_its_length() -> None:
    assert first_divergence([True, True], 2, 4) == 2
    result = compare_to_reference(REFERENCE[:2], REFERENCE)
    assert result.first_divergence == 2 and result.top1_agreement == 1.0
    assert result.prefix_agreement == 0.5


def test_tokens_without_logprobs_fall_back_to_token_agreement() -> None:
    endpoint = [TokenLogprob(t.token, None) for t in REFERENCE]
    endpoint[3] = TokenLogprob("!", None)
    result = compare_to_reference(endpoint, REFERENCE)
    assert result.method == "tokens"
    assert result.first_divergence == 3 and result.prefix_agreement == 0.75
    assert result.mean_kl is None
    assert {s.metric for s in result.to_scores()} == {
        "top1_agreement",
        "first_divergence",
        "prefix_agreement",
    }


def test_no_tokens_falls_back_to_greedy_text_prefix() -> None:
    result = compare_to_reference(None, REFERENCE, "The cat ran.", "The cat sat.")
    assert result.method == "text"
    assert result.first_divergence == 8
    assert result.prefix_agreement == pytest.approx(8 / 12)
    assert result.divergence is not None and result.divergence["reference"] == "sat."
    same = compare_to_reference(None, None, "same", "same")
    assert same.first_divergence is None and same.prefix_agreement == 1.0
    assert text_prefix_agreement("", "") == 1.0


def test_near_tie_divergence_is_measured_but_not_flagged() -> None:
    """Honest bf16: the endpoint takes the runner-up of a near-tie (0.01 nats apart)."""
    reference = [position(" it", **{" it": 0.300, " the": 0.297, " this": 0.1})]
    endpoint = [position(" the", **{" the": 0.300, " it": 0.300, " this": 0.1})]
    result = compare_to_reference(endpoint, reference)
    assert result.first_divergence == 0
    assert result.divergence is not None
    assert result.divergence["reference_gap_nats"] == pytest.approx(math.log(0.300 / 0.297))
    assert not result.confident_divergence
    scores = {s.metric: s for s in result.to_scores()}
    assert not scores["first_divergence"].flagged
    assert scores["greedy_not_argmax"].value == 0.0  # a tie is not a sampler bug


def test_clear_preference_passed_over_is_flagged() -> None:
    reference = [position(",", **{",": 0.32, ".": 0.28, " or": 0.12})]
    endpoint = [position(" or", **{",": 0.32, ".": 0.28, " or": 0.12})]
    result = compare_to_reference(endpoint, reference)
    assert result.confident_divergence
    assert result.divergence is not None
    assert result.divergence["reference_gap_nats"] == pytest.approx(math.log(0.32 / 0.12))
    assert compare_to_reference(endpoint, reference, min_gap=2.0).confident_divergence is False


def test_token_outside_reference_topk_uses_the_smallest_shown_as_bound() -> None:
    reference = [position("a", a=0.5, b=0.2)]
    endpoint = [position("zzz", zzz=0.6, a=0.3)]
    result = compare_to_reference(endpoint, reference)
    assert result.divergence is not None
    assert result.divergence["reference_gap_nats"] == pytest.approx(math.log(0.5 / 0.2))


def test_greedy_token_below_its_own_top_is_a_dropped_top_token() -> None:
    """The approximate top-k bug: the endpoint's own logprobs rank ',' first, it emitted ' or'."""
    endpoint = [
        position(" the", **{" the": 0.5, " a": 0.3}),
        position(" or", **{",": 0.32, ".": 0.28, " or": 0.12}),
        position(".", **{".": 0.9}),
    ]
    share, evidence = greedy_not_argmax(endpoint)
    assert share == pytest.approx(1 / 3)
    assert evidence is not None and evidence["index"] == 1 and evidence["chosen"] == " or"
    assert greedy_not_argmax([TokenLogprob(token="x", logprob=None)]) == (None, None)
    scores = {s.metric: s for s in compare_to_reference(endpoint, endpoint).to_scores()}
    assert scores["greedy_not_argmax"].flagged
