"""Compare two aggregates metric by metric: tests, FDR control across the family, the gate.

Refuses what is not comparable: a suite that changed version between the sides, or scores made
by a different detector version or arguments. Cohorts present on one side only, and metrics
without a policy, are listed as notes, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canary.compare.aggregate import ALL_COHORTS, Aggregate, CohortData
from canary.errors import ExitCode, StoreError
from canary.stats import GateResult, MetricPolicy, MetricVerdict, TestResult, evaluate, gate
from canary.stats.kinds import Incomparable, MetricStats, stat_test
from canary.stats.result import no_data


class NotComparable(StoreError):
    """The two sides were measured differently (suite or detector version)."""

    exit_code = ExitCode.DATA


@dataclass(frozen=True)
class Comparison:
    """Everything `canary compare` reports."""

    before: str
    after: str
    by: tuple[str, ...]
    verdicts: list[MetricVerdict]
    gate: GateResult
    notes: list[str] = field(default_factory=list)
    evidence: dict[str, list[int]] = field(default_factory=dict)
    """`cohort/metric` → result ids on the after side that show the regression."""
    suites: tuple[str, ...] = ()
    """The suites compared (named, a baseline's, or the one both sides hold)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "by": list(self.by),
            "suites": list(self.suites),
            "gate": self.gate.to_dict(),
            "verdicts": [v.to_dict() for v in self.verdicts],
            "evidence": self.evidence,
            "notes": self.notes,
        }


def pair_cohorts(before: Aggregate, after: Aggregate) -> list[tuple[str, str, str]]:
    """(name, before key, after key) of the cohorts to compare.

    Cohorts are matched by key; when the sides share none and each has exactly one (e.g.
    ``--before pool=gpu-a --after pool=tpu-b`` grouped as a whole), the two are compared.
    """
    shared = sorted(set(before.cohorts) & set(after.cohorts))
    if shared:
        return [(key, key, key) for key in shared]
    if len(before.cohorts) == 1 and len(after.cohorts) == 1:
        (b,), (a,) = before.cohorts, after.cohorts
        name = ALL_COHORTS if a == b else f"{b} → {a}"
        return [(name, b, a)]
    return []


def compare(
    before: Aggregate,
    after: Aggregate,
    policies: Mapping[str, MetricPolicy],
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> Comparison:
    """Test every shared cohort × metric, adjust across the family, and decide the gate."""
    notes: list[str] = []
    pairs = pair_cohorts(before, after)
    if not pairs:
        notes.append("the two sides share no cohort; group differently with --by")
    results: list[TestResult] = []
    names: list[str] = []
    for name, b_key, a_key in pairs:
        b, a = before.cohorts[b_key], after.cohorts[a_key]
        tested, missing = cohort_tests(
            name, b, a, policies, alpha=alpha, power=power, missing_as_no_data=True
        )
        results += tested
        names += [name] * len(tested)
        notes += missing
    verdicts = evaluate(results, cohorts=names, policies=policies, alpha=alpha)
    decision = gate(verdicts, policies)
    if not any(v.verdict != "no_data" for v in verdicts):
        # Nothing was compared: a gate must never pass on no evidence.
        notes.append("nothing to compare: no metric has data on both sides")
        decision = GateResult("inconclusive", no_data=decision.no_data)
    return Comparison(
        before=before.description,
        after=after.description,
        by=after.by,
        verdicts=verdicts,
        gate=decision,
        notes=notes,
    )


def cohort_tests(
    name: str,
    b: CohortData,
    a: CohortData,
    policies: Mapping[str, MetricPolicy],
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    missing_as_no_data: bool = False,
) -> tuple[list[TestResult], list[str]]:
    """The unadjusted tests of one cohort pair (a metric with a policy and data on both sides),
    and a note per metric missing a side (with ``missing_as_no_data`` also a ``no_data`` result,
    so the gate sees it); `NotComparable` if the sides were measured differently. The report
    tests cohort by cohort with it and adjusts the grid as one family."""
    for suite in sorted(set(b.suites) & set(a.suites)):
        if b.suites[suite] != a.suites[suite] or len(a.suites[suite]) > 1:
            raise NotComparable(
                f"cohort {name}: suite {suite!r} ran as version "
                f"{','.join(sorted(b.suites[suite]))} before and "
                f"{','.join(sorted(a.suites[suite]))} after; compare runs of one suite "
                "version, or re-capture the baseline with the new suite"
            )
    results: list[TestResult] = []
    notes: list[str] = []
    for metric in sorted(set(b.metrics) | set(a.metrics)):
        policy = policies.get(metric.split("@", 1)[0])
        if policy is None:
            continue
        if metric not in b.metrics or metric not in a.metrics:
            side = "before" if metric not in b.metrics else "after"
            notes.append(f"{name}/{metric}: no data {side}")
            if missing_as_no_data:
                # Kept as a verdict: a critical metric missing on one side blocks a pass.
                n_b = b.metrics[metric].n if metric in b.metrics else 0
                n_a = a.metrics[metric].n if metric in a.metrics else 0
                results.append(no_data(metric, policy.kind, "none", n_b, n_a, power, alpha))
            continue
        results.append(
            _test(name, metric, b.metrics[metric], a.metrics[metric], policy, alpha, power)
        )
    return results, notes


def _test(
    cohort: str,
    metric: str,
    b: MetricStats,
    a: MetricStats,
    policy: MetricPolicy,
    alpha: float,
    power: float,
) -> TestResult:
    """The test of ``policy.kind`` on one cohort × metric, after the comparability checks."""
    if b.fingerprints and a.fingerprints and b.fingerprints != a.fingerprints:
        raise NotComparable(
            f"cohort {cohort}: {metric} was scored by detector version "
            f"{','.join(sorted(b.fingerprints))} before and {','.join(sorted(a.fingerprints))} "
            "after; re-score both sides with `canary score --since …`"
        )
    if len(a.fingerprints) > 1:
        raise NotComparable(
            f"cohort {cohort}: {metric} mixes detector versions {sorted(a.fingerprints)}; "
            "re-score with `canary score`"
        )
    if b.kind != policy.kind or a.kind != policy.kind:
        raise NotComparable(
            f"cohort {cohort}: {metric} was aggregated as {b.kind}/{a.kind}, but its policy is "
            f"{policy.kind}; re-capture the baseline with this policy"
        )
    try:
        return stat_test(policy.kind).test(b, a, policy, alpha, power)
    except Incomparable as exc:
        raise NotComparable(f"cohort {cohort}: {metric} {exc}") from None
