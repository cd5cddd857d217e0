"""The sequential gate on simulated rounds: a healthy family passes early, a regression in one
cohort is caught and named with its test, and A/A families rarely fail."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from canary.compare.sequential_gate import Key, MetricEvidence, run_sequential_gate
from canary.stats import MetricPolicy
from canary.stats.anytime import Sample

POLICIES = {
    "first_divergence": MetricPolicy(
        metric="first_divergence", kind="rate", margin=0.01, critical=True
    ),
    "fixed_fail": MetricPolicy(metric="fixed_fail", kind="rate", margin=0.03),
}
PROBES, ROUNDS, COHORTS = 200, 10, 5
Round = tuple[Mapping[Key, MetricEvidence], int]


def _rounds(seed: int, worse: float, paired: bool) -> Callable[[], Round | None]:
    """Round after round of cumulative evidence; cohort 0 gets ``worse`` extra flags."""
    rng = np.random.default_rng(seed)
    sticky = {m: rng.random((COHORTS, PROBES)) < 0.005 for m in POLICIES}
    before = {m: np.repeat(sticky[m][:, None, :], ROUNDS, axis=1) for m in POLICIES}
    after = {
        m: np.maximum(
            np.repeat(sticky[m][:, None, :], ROUNDS, axis=1),
            rng.random((COHORTS, ROUNDS, PROBES)) < 0.001,
        ).astype(float)
        for m in POLICIES
    }
    after["first_divergence"][0] = np.maximum(
        after["first_divergence"][0], rng.random((ROUNDS, PROBES)) < worse
    )
    done = [0]

    def next_round() -> Round | None:
        if done[0] == ROUNDS:
            return None
        done[0] += 1
        r = done[0]
        out = {}
        for c in range(COHORTS):
            for m, policy in POLICIES.items():
                b, a = before[m][c].astype(float), after[m][c][:r]
                pairs = Sample.of(((a - b[:r] + 1) / 2).ravel()) if paired else None
                out[(f"c{c}", m)] = MetricEvidence(
                    policy,
                    Sample.rate(int(b.sum()), b.size),
                    Sample.rate(int(a.sum()), a.size),
                    pairs,
                )
        return out, r * PROBES

    return next_round


def test_healthy_family_passes_before_the_budget_with_the_paired_test() -> None:
    d = run_sequential_gate(_rounds(1, 0.0, True), POLICIES, max_probes=PROBES * ROUNDS)
    assert (d.status, d.stop) == ("pass", "decided")
    assert d.probes < PROBES * ROUNDS
    assert {v.method for v in d.verdicts} == {"paired-betting-eprocess"}
    assert d.exit_code == 0


def test_regression_in_one_cohort_is_caught_and_named() -> None:
    d = run_sequential_gate(_rounds(2, 0.05, True), POLICIES, max_probes=PROBES * ROUNDS)
    assert (d.status, d.exit_code) == ("regression", 1)
    flagged = [(v.cohort, v.metric) for v in d.verdicts if v.verdict == "regression"]
    assert flagged == [("c0", "first_divergence")]


def test_unpaired_design_is_used_and_said_when_no_pairing_exists() -> None:
    d = run_sequential_gate(_rounds(3, 0.0, False), POLICIES, max_probes=PROBES * ROUNDS)
    assert {v.method for v in d.verdicts} == {"unpaired-betting-eprocess"}
    assert d.status != "regression"


def test_aa_false_regressions_stay_rare() -> None:
    seeds = 40
    failed = sum(
        run_sequential_gate(_rounds(100 + s, 0.0, True), POLICIES, max_probes=2000).status
        == "regression"
        for s in range(seeds)
    )
    assert failed / seeds <= 0.05 + 0.1


def test_budget_ends_inconclusive_when_a_critical_metric_cannot_be_shown_clean() -> None:
    tight = {k: p.model_copy(update={"margin": 0.0001}) for k, p in POLICIES.items()}
    d = run_sequential_gate(_rounds(4, 0.0, True), tight, max_probes=PROBES * 3)
    assert (d.status, d.stop, d.exit_code) == ("inconclusive", "budget", 2)


def test_pairs_that_cannot_cover_half_the_budget_fall_back_to_unpaired() -> None:
    d = run_sequential_gate(_rounds(5, 0.0, True), POLICIES, max_probes=PROBES * ROUNDS * 3)
    assert {v.method for v in d.verdicts} == {"unpaired-betting-eprocess"}
