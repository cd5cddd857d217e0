"""Continuous metrics: Mann–Whitney from histograms, Hodges–Lehmann shift, A/A and power."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from canary.stats import (
    DEFAULT_POLICIES,
    MetricPolicy,
    TestResult,
    compare_continuous_binned,
    compare_continuous_samples,
    decide,
    histogram_counts,
    histogram_edges,
)
from tests.stats.conftest import ALPHA, SEEDS, fp_ceiling, power_floor

ENTROPY = DEFAULT_POLICIES["char_entropy"]
LATENCY = DEFAULT_POLICIES["latency_ms"]
AGREEMENT = DEFAULT_POLICIES["top1_agreement"]
PLAIN = MetricPolicy(metric="x", kind="continuous", margin=0.1)


def binned(policy: MetricPolicy, before: np.ndarray, after: np.ndarray) -> TestResult:
    edges = histogram_edges(policy.metric)
    return compare_continuous_binned(
        edges, histogram_counts(edges, before), histogram_counts(edges, after), policy
    )


def agreement(rng: np.random.Generator, n: int) -> np.ndarray:
    """Top-1 agreement: most answers agree fully, the rest spread below."""
    return np.where(rng.random(n) < 0.7, 1.0, rng.beta(8, 1.5, n))


def test_binned_u_equals_scipy_when_every_value_has_its_own_bin() -> None:
    rng = np.random.default_rng(0)
    b, a = rng.normal(0, 1, 120), rng.normal(0.2, 1, 80)
    v = np.sort(np.concatenate([a, b]))
    edges = np.concatenate([[v[0] - 1], (v[1:] + v[:-1]) / 2, [v[-1] + 1]])
    r = compare_continuous_binned(
        edges, histogram_counts(edges, b), histogram_counts(edges, a), PLAIN
    )
    ref = mannwhitneyu(a, b, alternative="greater", method="asymptotic")
    assert r.details["u_statistic"] == ref.statistic
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_binned_u_equals_scipy_with_ties_inside_bins() -> None:
    rng = np.random.default_rng(1)
    b, a = rng.integers(0, 10, 300).astype(float), rng.integers(1, 11, 200).astype(float)
    edges = np.arange(-0.5, 11.0)
    two = MetricPolicy(metric="x", kind="continuous", margin=0.1, direction="two_sided")
    r = compare_continuous_binned(
        edges, histogram_counts(edges, b), histogram_counts(edges, a), two
    )
    ref = mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    wins = (a[:, None] > b[None, :]).mean() - (a[:, None] < b[None, :]).mean()
    assert r.details["cliffs_delta"] == pytest.approx(wins)


def test_binned_hodges_lehmann_is_within_a_bin_of_the_exact_one() -> None:
    rng = np.random.default_rng(2)
    b, a = rng.normal(4.3, 0.4, 400), rng.normal(4.45, 0.4, 300)
    exact = compare_continuous_samples(b, a, ENTROPY)
    r = binned(ENTROPY, b, a)
    width = r.details["bin_width"]
    assert abs(r.effect - exact.effect) < width
    assert abs(r.ci_low - exact.ci_low) < width and abs(r.ci_high - exact.ci_high) < width
    assert r.ci_low < r.effect < r.ci_high


@pytest.mark.parametrize("metric", ["char_entropy", "latency_ms", "top1_agreement"])
def test_aa_false_positive_rate_is_at_most_alpha(metric: str) -> None:
    rng = np.random.default_rng(3)
    pol = DEFAULT_POLICIES[metric]
    draws: dict[str, Callable[[int], np.ndarray]] = {
        "char_entropy": lambda n: rng.normal(4.3, 0.4, n),
        "latency_ms": lambda n: rng.lognormal(6.5, 0.6, n),
        "top1_agreement": lambda n: agreement(rng, n),
    }
    draw = draws[metric]
    hits = regressions = 0
    for _ in range(SEEDS):
        r = binned(pol, draw(600), draw(300))
        hits += r.p_value < ALPHA
        regressions += decide(r, r.p_value, pol, ALPHA) == "regression"
    print(f"A/A {metric}: p<α in {hits / SEEDS:.3f}, regression verdicts {regressions / SEEDS:.3f}")
    assert hits / SEEDS <= fp_ceiling()
    assert regressions <= hits


def test_shift_at_the_mde_is_found_at_the_stated_power() -> None:
    rng = np.random.default_rng(4)
    mde = binned(PLAIN_ENTROPY, rng.normal(4.3, 0.4, 1000), rng.normal(4.3, 0.4, 500)).mde
    hits = sum(
        binned(PLAIN_ENTROPY, rng.normal(4.3, 0.4, 1000), rng.normal(4.3 + mde, 0.4, 500)).p_value
        < ALPHA
        for _ in range(200)
    )
    print(f"continuous power at mde={mde:.3f}: {hits / 200:.3f} (stated 0.8)")
    assert hits / 200 >= power_floor(200, 0.8)


PLAIN_ENTROPY = MetricPolicy(metric="char_entropy", kind="continuous", margin=0.05)


def test_bf16_like_shift_within_margin_is_never_a_regression() -> None:
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(20):
        r = binned(ENTROPY, rng.normal(4.3, 0.4, 20_000), rng.normal(4.31, 0.4, 20_000))
        seen.add(decide(r, r.p_value, ENTROPY, ALPHA))
    assert "regression" not in seen and "pass" in seen


def test_corruption_raising_entropy_and_degeneration_lowering_it_are_regressions() -> None:
    rng = np.random.default_rng(6)
    base = rng.normal(4.3, 0.4, 3000)
    for shift in (0.3, -0.3):
        r = binned(ENTROPY, base, rng.normal(4.3 + shift, 0.4, 1000))
        assert decide(r, r.p_value, ENTROPY, ALPHA) == "regression"
        assert np.sign(r.effect) == np.sign(shift)


def test_lower_is_worse_agreement_drop_and_latency_slowdown_are_found() -> None:
    rng = np.random.default_rng(7)
    dropped = np.minimum(agreement(rng, 1000), rng.uniform(0.6, 1.0, 1000))
    r = binned(AGREEMENT, agreement(rng, 2000), dropped)
    assert r.effect > 0 and decide(r, r.p_value, AGREEMENT, ALPHA) == "regression"
    slow = binned(LATENCY, rng.lognormal(6.5, 0.3, 2000), rng.lognormal(6.5, 0.3, 1000) + 200)
    assert slow.effect == pytest.approx(200, rel=0.15)
    assert decide(slow, slow.p_value, LATENCY, ALPHA) == "regression"


def test_few_samples_are_inconclusive_and_empty_is_no_data() -> None:
    rng = np.random.default_rng(8)
    verdicts = [
        decide(r, r.p_value, ENTROPY, ALPHA)
        for r in (
            compare_continuous_samples(rng.normal(4.3, 0.4, 5), rng.normal(4.3, 0.4, 5), ENTROPY)
            for _ in range(100)
        )
    ]
    assert verdicts.count("inconclusive") >= 90 and "pass" not in verdicts
    empty = binned(ENTROPY, np.array([4.0, 4.1]), np.array([]))
    assert decide(empty, float("nan"), ENTROPY, ALPHA) == "no_data"


def test_samples_path_agrees_with_scipy() -> None:
    rng = np.random.default_rng(9)
    b, a = rng.normal(0, 1, 50), rng.normal(0.5, 1, 40)
    r = compare_continuous_samples(b, a, PLAIN)
    assert r.p_value == pytest.approx(mannwhitneyu(a, b, alternative="greater").pvalue)
    assert r.effect == pytest.approx(np.median(np.subtract.outer(a, b)))
