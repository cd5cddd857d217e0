"""Paired designs: the same probes ran before and after, so compare each probe with itself.

Probes differ wildly in difficulty (a probe flagged before is flagged after on a healthy fleet);
an unpaired test pays for that spread, a paired one cancels it. Three tests, all exact or
conditioned on what the null leaves free:

- `mcnemar_exact`: per-probe flags of matched before/after results; under no change the
  discordant pairs split like a fair coin (the exact McNemar test is a sign test on them).
- `sign_test`: per-probe differences of a continuous value (e.g. top-1 agreement).
- `cmh_test`: the Cochran–Mantel–Haenszel test of rates stratified by probe, for when the sides
  ran each probe a different number of times (no one-to-one matching).

`greedy_agrees` is the per-probe agreement of greedy outputs that feeds them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from canary.stats.policy import MetricPolicy
from canary.stats.result import TestResult

MCNEMAR = "paired-mcnemar-exact"
SIGN = "paired-sign-exact"
CMH = "stratified-cmh"


@dataclass(frozen=True)
class PairedFlags:
    """Matched before/after results of one metric: flagged on both, before only, after only,
    neither."""

    both: int
    before_only: int
    after_only: int
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.before_only + self.after_only + self.neither


def mcnemar_exact(flags: PairedFlags, policy: MetricPolicy, alpha: float = 0.05) -> TestResult:
    """One-sided exact McNemar test (binomial test on the discordant pairs) that after is worse.

    The effect is the paired rate difference ``(after_only − before_only) / n``; its interval is
    the exact Clopper–Pearson interval of the discordant split mapped to a difference, which is
    conditional on the number of discordant pairs (as the test is).
    """
    from scipy.stats import binomtest

    n, b, c = flags.n, flags.before_only, flags.after_only
    worse, better = (c, b) if policy.direction != "lower_is_worse" else (b, c)
    discordant = b + c
    p_b = (flags.both + b) / n if n else math.nan
    p_a = (flags.both + c) / n if n else math.nan
    effect = (worse - better) / n if n else math.nan
    if discordant:
        test = binomtest(worse, discordant, 0.5, alternative="greater")
        ci = test.proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
        p_value = float(test.pvalue)
        lo = (2 * ci.low - 1) * discordant / n
        hi = (2 * ci.high - 1) * discordant / n
    else:
        p_value, lo, hi = 1.0, -3.0 / max(n, 1), 3.0 / max(n, 1)
    return TestResult(
        metric=policy.metric,
        kind=policy.kind,
        method=MCNEMAR,
        n_before=n,
        n_after=n,
        estimate_before=p_b,
        estimate_after=p_a,
        effect=effect,
        ci_low=lo,
        ci_high=hi,
        p_value=p_value,
        mde=math.nan,
        power=math.nan,
        alpha=alpha,
        details={"discordant": discordant, "worse_only": worse, "better_only": better},
    )


def sign_test(
    diffs: Sequence[float], policy: MetricPolicy, alpha: float = 0.05, tie: float = 0.0
) -> TestResult:
    """Exact sign test of paired differences ``after − before`` (|d| ≤ ``tie`` count as ties),
    one-sided towards worse; the effect is the mean difference (positive = worse)."""
    from scipy.stats import binomtest

    sign = -1.0 if policy.direction == "lower_is_worse" else 1.0
    oriented = [sign * d for d in diffs]
    worse = sum(d > tie for d in oriented)
    better = sum(d < -tie for d in oriented)
    n = len(oriented)
    mean = sum(oriented) / n if n else math.nan
    p_value = (
        float(binomtest(worse, worse + better, 0.5, alternative="greater").pvalue)
        if worse + better
        else 1.0
    )
    return TestResult(
        metric=policy.metric,
        kind=policy.kind,
        method=SIGN,
        n_before=n,
        n_after=n,
        estimate_before=math.nan,
        estimate_after=math.nan,
        effect=mean,
        ci_low=math.nan,
        ci_high=math.nan,
        p_value=p_value,
        mde=math.nan,
        power=math.nan,
        alpha=alpha,
        details={"worse": worse, "better": better, "ties": n - worse - better},
    )


def cmh_test(
    strata: Sequence[tuple[int, int, int, int]], policy: MetricPolicy, alpha: float = 0.05
) -> TestResult:
    """Cochran–Mantel–Haenszel test over probes: each stratum is ``(k_before, n_before, k_after,
    n_after)`` of one probe. One-sided (after worse) continuity-corrected score statistic; the
    effect is the Mantel–Haenszel weighted risk difference."""
    from scipy.stats import norm

    sum_a = sum_e = sum_v = 0.0
    rd_num = rd_den = 0.0
    kb_t = nb_t = ka_t = na_t = 0
    for kb, nb, ka, na in strata:
        total = nb + na
        kb_t, nb_t, ka_t, na_t = kb_t + kb, nb_t + nb, ka_t + ka, na_t + na
        if nb == 0 or na == 0 or total < 2:
            continue
        events = kb + ka
        sum_a += ka
        sum_e += na * events / total
        sum_v += nb * na * events * (total - events) / (total * total * (total - 1))
        w = nb * na / total
        rd_num += w * (ka / na - kb / nb)
        rd_den += w
    sign = -1.0 if policy.direction == "lower_is_worse" else 1.0
    if sum_v > 0:
        z = sign * (sum_a - sum_e) - 0.5
        p_value = float(norm.sf(z / math.sqrt(sum_v)))
    else:
        p_value = 1.0
    effect = sign * rd_num / rd_den if rd_den else math.nan
    return TestResult(
        metric=policy.metric,
        kind=policy.kind,
        method=CMH,
        n_before=nb_t,
        n_after=na_t,
        estimate_before=kb_t / nb_t if nb_t else math.nan,
        estimate_after=ka_t / na_t if na_t else math.nan,
        effect=effect,
        ci_low=math.nan,
        ci_high=math.nan,
        p_value=min(1.0, p_value),
        mde=math.nan,
        power=math.nan,
        alpha=alpha,
        details={"strata": len(strata)},
    )


def greedy_agrees(
    before: Sequence[str],
    after: Sequence[str],
    reference_gaps: Sequence[float] | None = None,
    tie_nats: float = 0.05,
) -> bool:
    """Whether a greedy after-output agrees with the before-output of the same probe: equal
    tokens, or a first divergence at a near-tie of the reference (its top-2 log-prob gap at that
    position ≤ ``tie_nats``, where an honest numeric difference may pick either token)."""
    for i, (b, a) in enumerate(zip(before, after, strict=False)):
        if b != a:
            gap = (
                reference_gaps[i]
                if reference_gaps is not None and i < len(reference_gaps)
                else None
            )
            return gap is not None and gap <= tie_nats
    return len(before) == len(after)
