"""Each identity statistic on synthetic data: calibrated under its null, powerful against a
clear alternative. Seeds are fixed, so the checks are deterministic; the rates asserted leave
binomial room (a 5% test seen over 200 nulls rejects at most ~19 times at p < 0.001)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from canary.identity import (
    bucket_kl,
    combine,
    flip_test,
    kl_margin_test,
    rank_uniformity_test,
    stratified_mmd_test,
    summarize,
    tracking_test,
)
from canary.identity._verdict import TestOutcome as Outcome


def _dist(logits: np.ndarray) -> dict[str, float]:
    logp = logits - np.log(np.exp(logits).sum())
    return {f"t{i}": float(v) for i, v in enumerate(logp)}


def _top(dist: dict[str, float], k: int = 5) -> dict[str, float]:
    return dict(sorted(dist.items(), key=lambda kv: -kv[1])[:k])


def test_bucket_kl_is_zero_for_the_same_distribution_and_close_to_the_true_kl() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        logits = rng.normal(size=40) * 2
        ref = _dist(logits)
        assert bucket_kl(ref, _top(ref)) == pytest.approx(0.0, abs=1e-9)
        other = _dist(logits + rng.normal(size=40) * 0.5)
        true = sum(math.exp(p) * (p - other[k]) for k, p in ref.items())
        assert 0.0 < bucket_kl(ref, _top(other)) <= 1.25 * true


def test_bucket_kl_between_two_topk_sides_is_symmetric_in_spirit() -> None:
    ref = _dist(np.array([3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0]))
    assert bucket_kl(_top(ref), _top(ref), reference_full=False) == pytest.approx(0, abs=1e-9)
    shifted = _dist(np.array([2.0, 3.0, 1.0, 0.0, -1.0, -2.0, -3.0]))
    assert bucket_kl(_top(ref), _top(shifted), reference_full=False) > 0.1


def test_summary_reports_mean_p99_and_same_top1() -> None:
    s = summarize([0.0] * 99 + [1.0], [True] * 90 + [False] * 10)
    assert s.positions == 100
    assert s.mean_kl == pytest.approx(0.01)
    assert 0.0 <= s.p99_kl <= 1.0
    assert s.same_top1 == pytest.approx(0.9)


def test_kl_margin_says_same_below_different_above_and_inconclusive_when_unsure() -> None:
    rng = np.random.default_rng(2)
    noise = rng.exponential(2e-4, size=40)  # an honest bf16-like floor
    assert kl_margin_test(noise).verdict == "same"
    quantized = rng.exponential(1.3e-2, size=40)  # a 4-bit-like shift
    assert kl_margin_test(quantized).verdict == "different"
    assert kl_margin_test([1e-3, 4e-3, 1e-4]).verdict == "inconclusive"
    assert kl_margin_test([0.0, 0.0, 0.0, 0.0]).verdict == "same"


def test_kl_margin_false_different_rate_at_the_margin_is_at_most_alpha() -> None:
    # The hardest null: the true mean is exactly the margin.
    margin = 2e-3
    rejections = 0
    for seed in range(200):
        values = np.random.default_rng(seed).exponential(margin, size=30)
        rejections += (
            kl_margin_test(values, margin=margin, n_resamples=500, seed=seed).p_different <= 0.05
        )
    assert rejections <= 19


def test_mmd_is_calibrated_under_the_null_and_sees_a_different_sampler() -> None:
    alphabet = list("abcdefgh")

    def draw(rng: np.random.Generator, weights: np.ndarray, n: int) -> list[str]:
        return ["".join(rng.choice(alphabet, size=6, p=weights)) for _ in range(n)]

    even = np.full(8, 1 / 8)
    skewed = np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    pvalues = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a = [draw(rng, even, 6) for _ in range(5)]
        b = [draw(rng, even, 6) for _ in range(5)]
        pvalues.append(stratified_mmd_test(a, b, n_permutations=99, seed=seed).p_value)
    assert sum(p <= 0.05 for p in pvalues) <= 19
    rng = np.random.default_rng(7)
    a = [draw(rng, even, 10) for _ in range(10)]
    b = [draw(rng, skewed, 10) for _ in range(10)]
    result = stratified_mmd_test(a, b, n_permutations=199)
    assert result.p_value <= 0.01 and result.mmd > 0


def test_rut_is_calibrated_under_the_null_and_sees_less_likely_text() -> None:
    pvalues = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        ref = rng.normal(size=(30, 10))
        mine = rng.normal(size=30)
        pvalues.append(rank_uniformity_test(mine, ref, seed=seed).p_value)
    assert sum(p <= 0.05 for p in pvalues) <= 19
    rng = np.random.default_rng(3)
    shifted = rank_uniformity_test(rng.normal(-1.0, 1, size=30), rng.normal(size=(30, 10)))
    assert shifted.p_value < 0.01 and shifted.mean_rank < 0.4


def test_tracking_is_calibrated_under_the_null_and_sees_a_shift() -> None:
    def vectors(rng: np.random.Generator, shift: float, n: int) -> list[dict[str, float]]:
        base = np.array([-0.5, -1.5, -2.0, -3.0, -4.0]) + np.array([shift, 0, 0, 0, 0])
        return [
            {f"t{i}": float(v) for i, v in enumerate(base + rng.normal(0, 0.01, size=5))}
            for _ in range(n)
        ]

    rejections = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a = [vectors(rng, 0.0, 8) for _ in range(3)]
        b = [vectors(rng, 0.0, 8) for _ in range(3)]
        # Tolerance 0: the permutation test itself, not the tolerance, must hold the level.
        rejections += tracking_test(a, b, n_resamples=99, seed=seed, tolerance=0.0).p_value <= 0.05
    assert rejections <= 19
    rng = np.random.default_rng(5)
    a = [vectors(rng, 0.0, 8) for _ in range(3)]
    b = [vectors(rng, 0.05, 8) for _ in range(3)]
    assert tracking_test(a, b, n_resamples=199, tolerance=0.0).p_value < 0.01
    b = [vectors(rng, 0.3, 8) for _ in range(3)]  # an int4 build's median first-token shift
    assert tracking_test(a, b, n_resamples=199).p_value < 0.01


def test_tracking_does_not_call_float_rounding_a_different_model() -> None:
    """A baseline captured while the server batched differently: every answer of today's side
    sits a few 1e-6 nats off (the flake a real fleet showed). The permutation test alone calls
    that a change; within the tolerance it is the same model, and a real shift still is not."""
    base = {"a": -0.2, "b": -1.9, "c": -3.1, "d": -4.0, "e": -4.4}
    batched = [{k: v + 4e-6 * (i % 3) for k, v in base.items()} for i in range(10)]
    alone = [dict(base) for _ in range(10)]
    assert tracking_test([alone] * 8, [batched] * 8, tolerance=0.0).p_value < 0.001
    within = tracking_test([alone] * 8, [batched] * 8)
    assert within.p_value == 1.0 and within.max_shift < within.tolerance
    moved = [{k: v + (0.3 if k == "a" else 0.0) for k, v in top.items()} for top in batched]
    assert tracking_test([alone] * 8, [moved] * 8).p_value < 0.001


def test_border_flips_against_the_noise_rate() -> None:
    assert flip_test(1, 200).verdict == "same"
    assert flip_test(40, 200).verdict == "different"
    assert flip_test(2, 20).verdict == "inconclusive"
    assert flip_test(0, 0).verdict == "inconclusive"


def test_the_verdict_needs_a_rejection_for_different_and_a_bound_for_same() -> None:
    bound = Outcome("kl-margin", p_value=0.9, p_same=0.001)
    plain = Outcome("mmd-hamming", p_value=0.4)
    assert combine([bound, plain], 0.05) == ("same", 0.025)
    assert combine([plain], 0.05)[0] == "inconclusive"
    assert combine([bound, Outcome("rut", p_value=0.001)], 0.05)[0] == "different"
    # Bonferroni: 0.03 rejects alone, not as one of two.
    assert combine([Outcome("rut", p_value=0.03)], 0.05)[0] == "different"
    assert combine([Outcome("rut", p_value=0.03), plain], 0.05)[0] == "inconclusive"
    assert combine([], 0.05)[0] == "inconclusive"
