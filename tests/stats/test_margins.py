"""Margins that can pass, inconclusive verdicts that say what would decide them, and a critical
metric without data that never passes."""

from __future__ import annotations

from canary.stats import DEFAULT_POLICIES, MetricPolicy, compare_rates, evaluate, gate
from canary.stats.power import more_per_side

BUILT_IN_CRITICAL = (
    "unexpected_script",
    "code_parse_error",
    "first_divergence",
    "greedy_not_argmax",
    "first_token_out_of_support",
)


def test_critical_margins_state_a_reason_and_can_pass_in_the_budget() -> None:
    """A critical rate margin below 0.3% needs more than 4,000 clean probes to rule out."""
    for name in BUILT_IN_CRITICAL:
        policy = DEFAULT_POLICIES[name]
        assert policy.critical and policy.reason, name
        assert policy.margin >= 0.003, name


def test_relative_margin_follows_a_high_base_rate() -> None:
    p = MetricPolicy(metric="x", kind="rate", margin=0.005, relative_margin=0.5)
    assert p.margin_at(0.002) == 0.005
    assert p.margin_at(0.04) == 0.02
    assert p.margin_at(float("nan")) == 0.005


def test_inconclusive_says_how_many_more_per_side() -> None:
    policy = MetricPolicy(metric="fixed_fail", kind="rate", margin=0.02)
    results = [compare_rates(3, 300, 4, 300, policy)]
    (v,) = evaluate(results, policies={"fixed_fail": policy})
    assert v.verdict == "inconclusive"
    assert v.needs_per_side is not None and v.needs_per_side > 0
    # With that many more per side at the same rates, it passes.
    n = 300 + v.needs_per_side
    (again,) = evaluate(
        [compare_rates(round(0.01 * n), n, round(0.0133 * n), n, policy)],
        policies={"fixed_fail": policy},
    )
    assert again.verdict == "pass"
    assert more_per_side(100, 100, float("nan"), float("nan"), 0.02) is None  # nothing known


def test_a_critical_metric_without_data_is_never_a_pass() -> None:
    g = gate([("fixed_fail", "pass"), ("unexpected_script", "no_data")])
    assert (g.status, g.inconclusive_critical, g.no_data) == (
        "inconclusive",
        ["unexpected_script"],
        ["unexpected_script"],
    )
    assert gate([("fixed_fail", "pass"), ("degenerate", "no_data")]).status == "pass"
