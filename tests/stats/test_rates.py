"""Rates: exact one-sided test, A/A calibration, rare-event power, margins and small samples."""

from __future__ import annotations

import numpy as np
import pytest

from canary.stats import DEFAULT_POLICIES, MetricPolicy, compare_rates, decide, mde_rate
from tests.stats.conftest import ALPHA, SEEDS, fp_ceiling, power_floor

#: The rate test's own policy (a tight margin, so these tests are about the test, not about the
#: shipped margin, which is sized for the gate's probe budget).
SCRIPT = DEFAULT_POLICIES["unexpected_script"].model_copy(update={"margin": 0.001})


@pytest.mark.parametrize(
    ("p", "n_b", "n_a"), [(0.001, 5000, 2000), (0.02, 2000, 2000), (0.3, 80, 40)]
)
def test_aa_false_positive_rate_is_at_most_alpha(p: float, n_b: int, n_a: int) -> None:
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(SEEDS):
        r = compare_rates(int(rng.binomial(n_b, p)), n_b, int(rng.binomial(n_a, p)), n_a, SCRIPT)
        hits += r.p_value < ALPHA
    rate = hits / SEEDS
    print(f"A/A rates p={p} n={n_b}/{n_a}: false-positive rate {rate:.3f} (α={ALPHA})")
    assert rate <= fp_ceiling()


def test_zero_baseline_still_has_power() -> None:
    r = compare_rates(0, 5000, 8, 1000, SCRIPT)
    assert r.p_value < 1e-5
    assert r.effect == pytest.approx(0.008)
    assert 0 < r.ci_low < r.effect < r.ci_high
    assert decide(r, r.p_value, SCRIPT, ALPHA) == "regression"


@pytest.mark.parametrize("p0", [0.0, 0.001])
def test_planted_misrouting_of_0_8_percent_is_found(p0: float) -> None:
    rng = np.random.default_rng(2)
    found = 0
    for _ in range(100):
        r = compare_rates(
            int(rng.binomial(5000, p0)), 5000, int(rng.binomial(2000, p0 + 0.008)), 2000, SCRIPT
        )
        found += decide(r, r.p_value, SCRIPT, ALPHA) == "regression"
    print(f"0.8% over {p0:.1%}: found in {found}/100")
    assert found >= 95


def test_detection_at_the_mde_reaches_the_stated_power() -> None:
    p0, n_b, n_a = 0.002, 5000, 3000
    mde = mde_rate(p0, n_b, n_a, ALPHA, 0.8)
    rng = np.random.default_rng(3)
    hits = sum(
        compare_rates(
            int(rng.binomial(n_b, p0)), n_b, int(rng.binomial(n_a, p0 + mde)), n_a, SCRIPT
        ).p_value
        < ALPHA
        for _ in range(SEEDS)
    )
    print(f"power at mde={mde:.4f}: {hits / SEEDS:.3f} (stated 0.8)")
    assert hits / SEEDS >= power_floor(SEEDS, 0.8)


def test_tiny_real_difference_within_margin_is_never_a_regression() -> None:
    rng = np.random.default_rng(4)
    verdicts = set()
    for _ in range(50):
        r = compare_rates(
            int(rng.binomial(200_000, 0.001)),
            200_000,
            int(rng.binomial(200_000, 0.0013)),
            200_000,
            SCRIPT,
        )
        verdicts.add(decide(r, r.p_value, SCRIPT, ALPHA))
    assert "regression" not in verdicts
    assert "pass" in verdicts


def test_few_samples_are_inconclusive_and_empty_is_no_data() -> None:
    r = compare_rates(0, 30, 0, 30, SCRIPT)
    assert decide(r, r.p_value, SCRIPT, ALPHA) == "inconclusive"
    assert r.mde > SCRIPT.margin
    assert decide(compare_rates(0, 0, 3, 10, SCRIPT), float("nan"), SCRIPT) == "no_data"
    assert compare_rates(0, 100, 0, 0, SCRIPT).to_dict()["p_value"] is None


def test_lower_is_worse_flips_the_sign_and_large_n_passes() -> None:
    pol = MetricPolicy(metric="success", kind="rate", direction="lower_is_worse", margin=0.01)
    worse = compare_rates(950, 1000, 900, 1000, pol)
    assert worse.effect == pytest.approx(0.05) and worse.p_value < 1e-4
    better = compare_rates(900, 1000, 950, 1000, pol)
    assert decide(better, better.p_value, pol) == "improvement"
    same = compare_rates(95_000, 100_000, 95_050, 100_000, pol)
    assert decide(same, same.p_value, pol) == "pass"


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="0 ≤ k ≤ n"):
        compare_rates(5, 3, 0, 10, SCRIPT)
