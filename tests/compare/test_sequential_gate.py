"""The sequential gate on simulated rounds: a healthy family passes early, a regression in one
cohort is caught and named with its test, and A/A families rarely fail."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest

from canary.compare.aggregate import Aggregate, CohortData
from canary.compare.gate import NotComparable
from canary.compare.sequential_gate import Key, MetricEvidence, run_sequential_gate
from canary.compare.sequential_run import evidence
from canary.stats import MetricPolicy
from canary.stats.anytime import Sample
from canary.stats.kinds import RateCounts

POLICIES = {
    "first_divergence": MetricPolicy(
        metric="first_divergence", kind="rate", margin=0.01, critical=True
    ),
    "fixed_fail": MetricPolicy(metric="fixed_fail", kind="rate", margin=0.03),
}
PROBES, ROUNDS, COHORTS = 200, 10, 5
Round = tuple[Mapping[Key, MetricEvidence], int]


def _rounds(
    seed: int, worse: float, paired: bool, policies: Mapping[str, MetricPolicy] = POLICIES
) -> Callable[[], Round | None]:
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
            for m, policy in policies.items():
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
    d = run_sequential_gate(_rounds(4, 0.0, True, tight), tight, max_probes=PROBES * 3)
    assert (d.status, d.stop, d.exit_code) == ("inconclusive", "budget", 2)


def test_pairs_that_cannot_cover_half_the_budget_fall_back_to_unpaired() -> None:
    d = run_sequential_gate(_rounds(5, 0.0, True), POLICIES, max_probes=PROBES * ROUNDS * 3)
    assert {v.method for v in d.verdicts} == {"unpaired-betting-eprocess"}


def test_the_gate_stops_once_every_critical_metric_is_decided() -> None:
    # fixed_fail (not critical) with a margin no 2,000 probes can meet stays undecided: the
    # gate does not wait for it, and it does not hold the deploy.
    loose = {**POLICIES, "fixed_fail": POLICIES["fixed_fail"].model_copy(update={"margin": 1e-5})}
    d = run_sequential_gate(_rounds(6, 0.0, True, loose), loose, max_probes=PROBES * ROUNDS)
    assert (d.status, d.stop) == ("pass", "decided")
    assert d.probes < PROBES * ROUNDS
    left = {v.metric for v in d.verdicts if v.verdict == "inconclusive"}
    assert left == {"fixed_fail"}


def test_without_a_critical_metric_the_gate_waits_for_every_metric() -> None:
    plain = {
        k: p.model_copy(update={"critical": False, "margin": 1e-5}) for k, p in POLICIES.items()
    }
    plain["first_divergence"] = POLICIES["first_divergence"].model_copy(update={"critical": False})
    d = run_sequential_gate(_rounds(7, 0.0, True, plain), plain, max_probes=PROBES * ROUNDS)
    assert d.stop in ("budget", "exhausted")
    assert d.rounds == ROUNDS


def _agg(metrics: dict[str, RateCounts]) -> Aggregate:
    agg = Aggregate(by=("endpoint",))
    cohort = CohortData({"endpoint": "a"})
    cohort.metrics.update(metrics)
    agg.cohorts["endpoint=a"] = cohort
    agg.cohorts["endpoint=b"] = CohortData({"endpoint": "b"})
    return agg


def test_evidence_keeps_a_one_sided_critical_metric_undecided_and_skips_unprobed_cohorts() -> None:
    before = _agg({"fixed_fail": RateCounts(k=0, n=100)})
    before.cohorts["endpoint=b"].metrics["fixed_fail"] = RateCounts(k=0, n=100)
    after = _agg({"fixed_fail": RateCounts(k=0, n=100), "first_divergence": RateCounts(k=0, n=100)})
    found, notes = evidence(before, after, POLICIES)
    assert set(found) == {("endpoint=a", "fixed_fail"), ("endpoint=a", "first_divergence")}
    assert found[("endpoint=a", "first_divergence")].before.n == 0
    assert notes == ["endpoint=a/first_divergence: no data before"]
    # The before side does not grow: the gate stops at once instead of spending the budget.
    d = run_sequential_gate(lambda: (found, 100), POLICIES, max_probes=10_000)
    assert (d.status, d.stop, d.rounds) == ("inconclusive", "undecidable", 1)


def test_evidence_refuses_scores_of_different_detector_versions() -> None:
    before = _agg({"fixed_fail": RateCounts(k=0, n=100, fingerprints={"1+aaaa"})})
    after = _agg({"fixed_fail": RateCounts(k=0, n=100, fingerprints={"1+bbbb"})})
    with pytest.raises(NotComparable, match="re-score both sides"):
        evidence(before, after, POLICIES)
