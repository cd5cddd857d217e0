"""Flag and failure rates: an exact test that keeps its power for rare events.

The postmortem's faults are rare: 0.8% of requests misrouted, a few Thai characters in English
answers. The baseline often has zero events (0 of 5000 answers ever contained Thai), so a test
must give a tiny p-value for 0/5000 → 8/1000 and never a spurious one for 0/50 → 1/50.
"""

from __future__ import annotations

import math

from canary.stats.policy import MetricPolicy
from canary.stats.power import mde_rate, upper_quantile
from canary.stats.result import TestResult, no_data

METHOD = "fisher-exact"


def compare_rates(
    k_before: int,
    n_before: int,
    k_after: int,
    n_after: int,
    policy: MetricPolicy,
    alpha: float = 0.05,
    power: float = 0.8,
) -> TestResult:
    """One-sided Fisher exact test that the after-rate is worse, with a Newcombe interval.

    Fisher's test conditions on the total events ``k_b + k_a``: under "no change" the after-count
    is hypergeometric, exact at any n and any rate, zero baselines included (it is conservative
    through discreteness, never liberal). The effect is the rate difference (positive = worse);
    its interval is Newcombe's hybrid score interval from two Wilson intervals at one-sided
    1 − α per side, which behaves at 0 events where the Wald interval collapses to a point.
    """
    for name, k, n in (("before", k_before, n_before), ("after", k_after, n_after)):
        if n < 0 or k < 0 or k > n:
            raise ValueError(f"{policy.metric}: {name} counts must satisfy 0 ≤ k ≤ n, got {k}/{n}")
    if policy.kind != "rate":
        raise ValueError(f"{policy.metric}: policy kind is {policy.kind!r}, not 'rate'")
    if n_before == 0 or n_after == 0:
        return no_data(policy.metric, "rate", METHOD, n_before, n_after, power, alpha)

    from scipy.stats import hypergeom

    p_b, p_a = k_before / n_before, k_after / n_after
    total, events = n_before + n_after, k_before + k_after
    # Not frozen: freezing a scipy distribution costs more than the two tail sums.
    p_greater = float(hypergeom.sf(k_after - 1, total, events, n_after))
    p_less = float(hypergeom.cdf(k_after, total, events, n_after))
    z = upper_quantile(alpha)
    lo_b, hi_b = wilson(k_before, n_before, z)
    lo_a, hi_a = wilson(k_after, n_after, z)
    diff = p_a - p_b
    low = diff - math.sqrt((p_a - lo_a) ** 2 + (hi_b - p_b) ** 2)
    high = diff + math.sqrt((hi_a - p_a) ** 2 + (p_b - lo_b) ** 2)

    direction = policy.direction
    if direction == "lower_is_worse":
        effect, ci_low, ci_high, p_value = -diff, -high, -low, p_less
    elif direction == "higher_is_worse":
        effect, ci_low, ci_high, p_value = diff, low, high, p_greater
    else:  # pragma: no cover - rejected by MetricPolicy
        raise ValueError(f"{policy.metric}: rates need a one-sided direction")
    return TestResult(
        metric=policy.metric,
        kind="rate",
        method=METHOD,
        n_before=n_before,
        n_after=n_after,
        estimate_before=p_b,
        estimate_after=p_a,
        effect=effect,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=min(1.0, p_value),
        mde=mde_rate(p_b, n_before, n_after, alpha, power, direction),
        power=power,
        alpha=alpha,
        details={
            "k_before": k_before,
            "k_after": k_after,
            "p_better": min(1.0, p_less) if direction == "higher_is_worse" else min(1.0, p_greater),
        },
    )


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for k/n at normal quantile ``z`` (each side one-sided)."""
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
