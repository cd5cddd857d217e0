"""The anytime-valid tests: calibrated under the null when checked after every round, powerful
on an obvious effect, and e-BH as in Wang & Ramdas (2022) on a hand example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from canary.stats.anytime import (
    Sample,
    e_bh,
    log_e_above,
    log_e_below,
    paired_log_e,
    two_sample_log_e,
)

ALPHA = 0.1
THRESHOLD = math.log(1 / ALPHA)


def test_e_bh_hand_example() -> None:
    # K = 4, α = 0.5: thresholds K/(α k) = 8, 4, 2.67, 2. Sorted e: 10, 3, 2.5, 0.5.
    # k = 1: 10 ≥ 8 yes; k = 2: 3 < 4; k = 3: 2.5 < 2.67; k = 4: 0.5 < 2 → reject only the 10.
    assert e_bh([3.0, 10.0, 0.5, 2.5], alpha=0.5) == [False, True, False, False]
    # Raising the third-largest to 2.7 makes k = 3 pass (2.7 ≥ 2.67): the top three go.
    assert e_bh([3.0, 10.0, 0.5, 2.7], alpha=0.5) == [True, True, False, True]
    assert e_bh([], alpha=0.05) == []
    assert e_bh([math.nan, 1e9], alpha=0.05) == [False, True]


def test_one_sample_bets_follow_the_data() -> None:
    clean = Sample.rate(0, 3000)
    assert log_e_below(clean, 0.003) > THRESHOLD  # 0/3000 rules out a 0.3% rate
    assert log_e_above(clean, 0.003) < 0  # and is no evidence of a higher one
    assert log_e_above(Sample.rate(1, 10), 0.0) == math.inf  # impossible under "rate ≤ 0"


def test_two_sample_null_is_calibrated_when_checked_every_round() -> None:
    """A/A: before 600 results, after grown by 60 per round for 12 rounds, stop at the first
    crossing. The false-decision rate over 200 seeds stays under α (plus binomial slack)."""
    rng = np.random.default_rng(7)
    seeds, hits = 200, 0
    for _ in range(seeds):
        p = rng.uniform(0.02, 0.3)
        before = Sample.rate(int(rng.binomial(600, p)), 600)
        k = n = 0
        for _ in range(12):
            k += int(rng.binomial(60, p))
            n += 60
            if two_sample_log_e(before, Sample.rate(k, n), 0.0, "below") >= THRESHOLD:
                hits += 1
                break
    assert hits / seeds <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / seeds)


def test_pass_test_is_calibrated_at_the_margin() -> None:
    """After worse by exactly the margin: the pass test must rarely pass, at any round."""
    rng = np.random.default_rng(8)
    seeds, hits, margin = 200, 0, 0.05
    for _ in range(seeds):
        before = Sample.rate(int(rng.binomial(600, 0.1)), 600)
        k = n = 0
        for _ in range(12):
            k += int(rng.binomial(60, 0.1 + margin))
            n += 60
            if two_sample_log_e(before, Sample.rate(k, n), margin, "above") >= THRESHOLD:
                hits += 1
                break
    assert hits / seeds <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / seeds)


def test_paired_null_is_calibrated_with_heterogeneous_probes() -> None:
    """Each probe has its own rate; before and after are the same. Paired differences, checked
    after every round of 50 pairs, rarely cross."""
    rng = np.random.default_rng(9)
    seeds, hits = 300, 0
    for _ in range(seeds):
        rates = rng.beta(0.3, 2.0, 50)
        diffs: list[float] = []
        for _ in range(20):
            b = rng.random(50) < rates
            a = rng.random(50) < rates
            diffs += list((a.astype(float) - b + 1) / 2)
            if paired_log_e(Sample.of(diffs), 0.0, "below") >= THRESHOLD:
                hits += 1
                break
    assert hits / seeds <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / seeds)


@pytest.mark.parametrize("paired", [False, True])
def test_an_obvious_regression_is_found_and_a_clean_side_passes(paired: bool) -> None:
    rng = np.random.default_rng(10)
    b = (rng.random(2000) < 0.01).astype(float)
    worse = np.maximum(b, rng.random(2000) < 0.05)
    same = b.copy()
    if paired:
        reg = paired_log_e(Sample.of((worse - b + 1) / 2), 0.0, "below")
        ok = paired_log_e(Sample.of((same - b + 1) / 2), 0.01, "above")  # the pairs cancel
    else:
        before = Sample.rate(int(b.sum()), b.size)
        reg = two_sample_log_e(before, Sample.rate(int(worse.sum()), 2000), 0.0, "below")
        # Unpaired, both sides' noise counts: a wider margin is what 2000 per side can pass.
        ok = two_sample_log_e(before, Sample.rate(int(same.sum()), 2000), 0.02, "above")
    assert reg > math.log(1000)
    assert ok > THRESHOLD
