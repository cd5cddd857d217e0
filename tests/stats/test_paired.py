"""Paired designs: exact McNemar, sign test, CMH, and greedy-output agreement."""

from __future__ import annotations

import math

import numpy as np

from canary.stats import MetricPolicy, decide
from canary.stats.paired import PairedFlags, cmh_test, greedy_agrees, mcnemar_exact, sign_test

RATE = MetricPolicy(metric="first_divergence", kind="rate", margin=0.005, critical=True)
AGREE = MetricPolicy(
    metric="top1_agreement", kind="continuous", direction="lower_is_worse", margin=0.02
)


def test_mcnemar_is_the_exact_binomial_on_discordant_pairs() -> None:
    from scipy.stats import binomtest

    r = mcnemar_exact(PairedFlags(both=5, before_only=2, after_only=12, neither=981), RATE)
    assert r.method == "paired-mcnemar-exact"
    assert math.isclose(r.p_value, binomtest(12, 14, 0.5, alternative="greater").pvalue)
    assert math.isclose(r.effect, 10 / 1000)
    assert r.ci_low > 0


def test_paired_beats_unpaired_on_the_same_data() -> None:
    """The lm-evaluation-harness#3831 situation: most probes agree, a few flip one way."""
    from canary.stats import compare_rates

    flags = PairedFlags(both=60, before_only=2, after_only=11, neither=927)
    paired = mcnemar_exact(flags, RATE)
    unpaired = compare_rates(62, 1000, 71, 1000, RATE)
    assert paired.p_value < 0.02 < unpaired.p_value


def test_mcnemar_null_is_calibrated() -> None:
    rng = np.random.default_rng(3)
    seeds, hits = 400, 0
    for _ in range(seeds):
        rates = rng.beta(0.5, 3.0, 300)
        b, a = rng.random(300) < rates, rng.random(300) < rates
        flags = PairedFlags(
            int((a & b).sum()), int((b & ~a).sum()), int((a & ~b).sum()), int((~a & ~b).sum())
        )
        hits += mcnemar_exact(flags, RATE).p_value < 0.05
    assert hits / seeds <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / seeds)


def test_no_discordant_pair_passes_a_generous_margin() -> None:
    r = mcnemar_exact(PairedFlags(both=3, before_only=0, after_only=0, neither=3997), RATE)
    assert r.p_value == 1.0
    assert decide(r, 1.0, RATE) == "pass"


def test_sign_test_orients_lower_is_worse() -> None:
    drops = [-0.05] * 30 + [0.0] * 60 + [0.01] * 2
    r = sign_test(drops, AGREE)
    assert r.p_value < 1e-6 and r.effect > 0
    assert sign_test([0.0] * 50, AGREE).p_value == 1.0


def test_cmh_stratified_by_probe() -> None:
    # Probe difficulty differs wildly; within each probe after is worse.
    strata = [(0, 100, 4, 100), (50, 100, 56, 100), (90, 100, 96, 100), (2, 100, 7, 100)]
    r = cmh_test(strata, RATE)
    assert r.method == "stratified-cmh"
    assert r.p_value < 0.05 and math.isclose(r.effect, 0.0525)
    assert cmh_test([(5, 100, 5, 100)] * 4, RATE).p_value > 0.4


def test_greedy_agreement_allows_a_near_tie() -> None:
    assert greedy_agrees(["a", "b", "c"], ["a", "b", "c"])
    assert not greedy_agrees(["a", "b", "c"], ["a", "x", "c"], [1.0, 2.0, 1.0])
    assert greedy_agrees(["a", "b", "c"], ["a", "x", "y"], [1.0, 0.01, 1.0])
    assert not greedy_agrees(["a", "b"], ["a", "b", "c"])
