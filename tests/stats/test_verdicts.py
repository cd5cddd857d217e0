"""FDR q-values, Holm, verdict rules, the gate, and A/A over many cohorts × metrics with FDR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from canary.stats import (
    DEFAULT_POLICIES,
    MetricPolicy,
    TestResult,
    adjust_pvalues,
    compare_continuous_binned,
    compare_rates,
    decide,
    evaluate,
    gate,
    histogram_counts,
    histogram_edges,
)
from canary.stats.multiple import holm_adjust
from tests.stats.conftest import ALPHA, fp_ceiling

P = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]


def test_bh_and_by_match_hand_values_and_scipy() -> None:
    bh = [0.008, 0.032, 0.0672, 0.0672, 0.0672, 0.08, 0.0845714, 0.205]
    assert adjust_pvalues(P) == pytest.approx(bh, rel=1e-5)
    c = sum(1 / i for i in range(1, 9))
    assert adjust_pvalues(P, "by") == pytest.approx([min(1, q * c) for q in bh], rel=1e-5)
    assert adjust_pvalues(P, "by") == pytest.approx(list(false_discovery_control(P, method="by")))


def test_nan_p_values_are_left_out_of_the_family() -> None:
    q = adjust_pvalues([0.01, math.nan, 0.04])
    assert math.isnan(q[1]) and q[0] == pytest.approx(0.02) and q[2] == pytest.approx(0.04)
    assert adjust_pvalues([]) == []


def test_holm_steps_down_and_stays_monotone() -> None:
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    adjusted = holm_adjust([0.01, 0.04, 0.03, 0.005, math.nan])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    assert holm_adjust([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def result(effect: float, lo: float, hi: float, p: float, n: int = 100) -> TestResult:
    return TestResult("m", "rate", "t", n, n, 0.0, effect, effect, lo, hi, p, 0.01, 0.8)


RATE = MetricPolicy(metric="m", kind="rate", margin=0.01)


@pytest.mark.parametrize(
    ("effect", "lo", "hi", "q", "verdict"),
    [
        (0.05, 0.03, 0.07, 0.001, "regression"),
        (0.005, 0.002, 0.008, 0.001, "pass"),  # significant, below the margin
        (0.005, 0.001, 0.02, 0.01, "inconclusive"),  # significant, margin not ruled out
        (0.05, -0.01, 0.1, 0.2, "inconclusive"),
        (-0.05, -0.07, -0.03, 0.99, "improvement"),
        (0.0, -0.004, 0.004, 0.5, "pass"),
    ],
)
def test_decide_rules(effect: float, lo: float, hi: float, q: float, verdict: str) -> None:
    assert decide(result(effect, lo, hi, q), q, RATE, ALPHA) == verdict


def test_gate_statuses_and_exit_codes() -> None:
    assert gate([("fixed_fail", "pass"), ("degenerate", "inconclusive")]).exit_code == 0
    g = gate([("unexpected_script", "inconclusive"), ("fixed_fail", "pass")])
    assert (g.status, g.exit_code, g.inconclusive_critical) == (
        "inconclusive",
        2,
        ["unexpected_script"],
    )
    g = gate([("unexpected_script", "inconclusive"), ("degenerate", "regression")])
    assert (g.status, g.exit_code) == ("regression", 1)
    assert gate([("unexpected_script", "no_data")]).to_dict()["no_data"] == ["unexpected_script"]


def test_aa_many_cohorts_with_fdr_keeps_the_familywise_alarm_rate() -> None:
    """20 cohorts × 4 metrics per comparison, 60 healthy comparisons: how many gates fail?"""
    rng = np.random.default_rng(0)
    edges = histogram_edges("char_entropy")
    rates = {"unexpected_script": 0.001, "fixed_fail": 0.03, "degenerate": 0.004}
    failed_fdr = failed_raw = 0
    comparisons = 60
    for _ in range(comparisons):
        results = []
        for _cohort in range(20):
            for m, p in rates.items():
                results.append(
                    compare_rates(
                        int(rng.binomial(3000, p)),
                        3000,
                        int(rng.binomial(1500, p)),
                        1500,
                        DEFAULT_POLICIES[m],
                    )
                )
            b, a = rng.normal(4.3, 0.4, 600), rng.normal(4.3, 0.4, 300)
            results.append(
                compare_continuous_binned(
                    edges,
                    histogram_counts(edges, b),
                    histogram_counts(edges, a),
                    DEFAULT_POLICIES["char_entropy"],
                )
            )
        failed_fdr += gate(evaluate(results)).status == "regression"
        failed_raw += any(r.p_value < ALPHA for r in results)
    print(
        f"A/A 80 tests/comparison: gate false alarms {failed_fdr / comparisons:.3f} with BH, "
        f"{failed_raw / comparisons:.3f} would be significant without correction"
    )
    assert failed_fdr / comparisons <= fp_ceiling(comparisons)
    assert failed_raw > 3 * failed_fdr


def test_one_faulty_cohort_among_many_is_still_found_after_fdr() -> None:
    rng = np.random.default_rng(1)
    results, cohorts = [], []
    for c in range(40):
        p_after = 0.009 if c == 7 else 0.001
        results.append(
            compare_rates(
                int(rng.binomial(5000, 0.001)),
                5000,
                int(rng.binomial(2000, p_after)),
                2000,
                DEFAULT_POLICIES["unexpected_script"],
            )
        )
        cohorts.append(f"pool-{c}")
    verdicts = evaluate(results, cohorts=cohorts)
    g = gate(verdicts)
    assert g.status == "regression" and g.regressions == ["pool-7/unexpected_script"]
    assert verdicts[7].to_dict()["q_value"] < ALPHA
