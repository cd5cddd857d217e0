"""From test results to verdicts per cohort and metric, and from verdicts to one gate.

Rules (``effect`` is positive when worse; ``[ci_low, ci_high]`` are one-sided 1 − α bounds):

- ``no_data``: either side has no observations.
- ``regression``: the FDR-adjusted ``q < α`` AND the point estimate exceeds the margin
  (``|effect| > margin`` for two-sided policies). Significant but smaller than the margin is
  not a regression — that is honest bf16 noise found by a big sample.
- ``improvement``: ``ci_high < 0`` (better at one-sided level α) AND ``effect < −margin``.
  Improvements fail nothing, so they are not FDR-adjusted; two-sided policies have none.
- ``pass``: ``ci_high < margin`` (and ``ci_low > −margin`` when two-sided): the data rules out
  a regression of the margin's size — a level-α non-inferiority test.
- ``inconclusive``: otherwise; too few samples to rule out a margin-sized regression (the
  result's ``mde`` says what the data could have detected).

Gate: any regression → ``regression`` (exit 1); else any ``inconclusive`` critical metric →
``inconclusive`` (exit 2); else ``pass`` (exit 0). ``no_data`` is listed; on a critical metric it
makes the gate inconclusive (a critical metric nobody measured was not shown clean).

Critical metrics get no raw-α bypass of the FDR: a comparison spans tens of cohorts, and
testing four critical metrics at raw α in each would raise false alarms on most healthy
comparisons. A real critical fault (0/5000 → 8/1000 gives p ≈ 1e-6) survives any realistic
family size; "critical" means an unresolved critical metric blocks the gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from canary.stats.multiple import FdrMethod, adjust_pvalues
from canary.stats.policy import MetricPolicy, policy_for
from canary.stats.power import more_per_side
from canary.stats.result import TestResult

Verdict = Literal["pass", "regression", "improvement", "inconclusive", "no_data"]
GateStatus = Literal["pass", "regression", "inconclusive"]
EXIT_CODES: dict[GateStatus, int] = {"pass": 0, "regression": 1, "inconclusive": 2}


def decide(
    result: TestResult, q_value: float, policy: MetricPolicy, alpha: float = 0.05
) -> Verdict:
    """The verdict of one result given its FDR-adjusted ``q_value`` (rules in the module doc)."""
    if not result.has_data:
        return "no_data"
    margin = policy.margin_at(result.estimate_before)
    significant = not math.isnan(q_value) and q_value < alpha
    effect, lo, hi = result.effect, result.ci_low, result.ci_high
    if policy.direction == "two_sided":
        if significant and abs(effect) > margin:
            return "regression"
        if -margin < lo and hi < margin:
            return "pass"
        return "inconclusive"
    if significant and effect > margin:
        return "regression"
    if _improves(policy) and hi < 0 and effect < -margin:
        return "improvement"
    if hi < margin:
        return "pass"
    return "inconclusive"


def _improves(policy: MetricPolicy) -> bool:
    from canary.stats.kinds import stat_test

    return stat_test(policy.kind).improves


@dataclass(frozen=True)
class MetricVerdict:
    """The verdict of one cohort × metric, with the numbers behind it."""

    cohort: str
    metric: str
    verdict: Verdict
    q_value: float
    critical: bool
    result: TestResult
    needs_per_side: int | None = None
    """Inconclusive only: more probes per side that would decide it at the observed effect."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "cohort": self.cohort,
            "metric": self.metric,
            "verdict": self.verdict,
            "q_value": self.q_value if math.isfinite(self.q_value) else None,
            "critical": self.critical,
            "result": self.result.to_dict(),
            "needs_per_side": self.needs_per_side,
        }


def evaluate(
    results: Sequence[TestResult],
    *,
    cohorts: Sequence[str] | None = None,
    policies: Mapping[str, MetricPolicy] | None = None,
    alpha: float = 0.05,
    fdr: FdrMethod = "bh",
) -> list[MetricVerdict]:
    """Adjust all p-values of one comparison as one family, then decide each.

    ``cohorts[i]`` names the cohort of ``results[i]`` (default ""). Policies are looked up by
    metric name with `policy_for` (defaults when ``policies`` is None).
    """
    if cohorts is not None and len(cohorts) != len(results):
        raise ValueError("cohorts and results must have the same length")
    qs = adjust_pvalues([r.p_value for r in results], fdr)
    out = []
    for i, (r, q) in enumerate(zip(results, qs, strict=True)):
        pol = policy_for(r.metric, dict(policies) if policies is not None else None)
        verdict = decide(r, q, pol, alpha)
        needs = None
        if verdict == "inconclusive" and pol.direction != "two_sided":
            margin = pol.margin_at(r.estimate_before)
            needs = more_per_side(r.n_before, r.n_after, r.effect, r.ci_high, margin)
        out.append(
            MetricVerdict(
                cohort=cohorts[i] if cohorts is not None else "",
                metric=r.metric,
                verdict=verdict,
                q_value=q,
                critical=pol.critical,
                result=r,
                needs_per_side=needs,
            )
        )
    return out


@dataclass(frozen=True)
class GateResult:
    """The gate over all verdicts of one comparison; ``exit_code`` is 0/1/2."""

    status: GateStatus
    regressions: list[str] = field(default_factory=list)
    inconclusive_critical: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    no_data: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "regressions": self.regressions,
            "inconclusive_critical": self.inconclusive_critical,
            "inconclusive": self.inconclusive,
            "no_data": self.no_data,
        }


def gate(
    verdicts: Iterable[MetricVerdict | tuple[str, Verdict]],
    policies: Mapping[str, MetricPolicy] | None = None,
) -> GateResult:
    """One status for the comparison (rules in the module doc). Items are `MetricVerdict`s or
    ``(metric, verdict)`` pairs; for pairs, criticality comes from ``policies``/defaults."""
    table = dict(policies) if policies is not None else None
    regressions: list[str] = []
    inc_crit: list[str] = []
    inc: list[str] = []
    missing: list[str] = []
    for item in verdicts:
        if isinstance(item, MetricVerdict):
            name = f"{item.cohort}/{item.metric}" if item.cohort else item.metric
            verdict, critical = item.verdict, item.critical
        else:
            name, verdict = item
            critical = policy_for(name, table).critical
        if verdict == "regression":
            regressions.append(name)
        elif verdict == "inconclusive":
            (inc_crit if critical else inc).append(name)
        elif verdict == "no_data":
            # A critical metric with no data on a side was not shown clean: never a pass.
            missing.append(name)
            if critical:
                inc_crit.append(name)
    status: GateStatus = "regression" if regressions else "inconclusive" if inc_crit else "pass"
    return GateResult(status, regressions, inc_crit, inc, missing)
