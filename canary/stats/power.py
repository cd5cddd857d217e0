"""Minimum detectable effects and required sample sizes, analytic.

Every formula is a normal (or noncentral chi-square) approximation of the test actually run;
each docstring states which. They answer "could this comparison have seen a regression of the
margin's size?" — an inconclusive verdict quotes them.
"""

from __future__ import annotations

import math

from canary.stats.policy import Direction


def upper_quantile(q: float) -> float:
    """The standard normal's upper ``q`` quantile: exactly `scipy.stats.norm.isf`, without
    its per-call argument handling (compare runs thousands of these)."""
    from scipy.special import ndtri

    return -float(ndtri(q))


def mde_rate(
    p0: float,
    n_before: int,
    n_after: int,
    alpha: float = 0.05,
    power: float = 0.8,
    direction: Direction = "higher_is_worse",
) -> float:
    """Smallest absolute rate change (towards worse) a one-sided level-``alpha`` test detects with
    probability ``power``, given baseline rate ``p0`` and the two sample sizes.

    Approximation: the pooled-variance score test with Yates' continuity correction,
    ``δ − ½(1/n_b + 1/n_a) = z_α·σ₀(δ) + z_β·σ₁(δ)`` (Fleiss, Levin & Paik §4.2) solved for δ.
    The correction makes it slightly conservative next to the Fisher test we run, which is what
    we want from a "could we have seen it" number; it stays usable at ``p0 = 0`` where the plain
    normal formula collapses. Returns ``inf`` when no change within [0, 1] is detectable.
    """
    if n_before <= 0 or n_after <= 0:
        return math.inf
    if direction == "two_sided":
        alpha = alpha / 2
        direction = "higher_is_worse"
    za, zb = upper_quantile(alpha), upper_quantile(1 - power)
    inv = 1 / n_before + 1 / n_after
    cc = 0.5 * inv
    sign = 1.0 if direction == "higher_is_worse" else -1.0
    d_max = 1.0 - p0 if sign > 0 else p0

    def gap(d: float) -> float:
        p1 = p0 + sign * d
        pbar = (n_before * p0 + n_after * p1) / (n_before + n_after)
        s0 = math.sqrt(max(pbar * (1 - pbar), 0.0) * inv)
        s1 = math.sqrt(max(p0 * (1 - p0), 0.0) / n_before + max(p1 * (1 - p1), 0.0) / n_after)
        return d - cc - za * s0 - zb * s1

    if d_max <= 0 or gap(d_max) < 0:
        return math.inf
    from scipy.optimize import brentq

    return float(brentq(gap, 0.0, d_max, xtol=1e-12))


def required_n(
    p0: float,
    delta: float,
    alpha: float = 0.05,
    power: float = 0.8,
    *,
    n_before: int | None = None,
    direction: Direction = "higher_is_worse",
) -> int | None:
    """Probes needed after the change to detect a rate change ``delta`` (same approximation as
    `mde_rate`). With ``n_before`` the baseline size is fixed and the after-size is returned;
    without it both groups are equal and the per-group size is returned. ``None`` when no
    after-size suffices (the baseline itself is too small)."""
    if delta <= 0:
        return None

    def ok(n: int) -> bool:
        nb = n if n_before is None else n_before
        return mde_rate(p0, nb, n, alpha, power, direction) <= delta

    hi = 1
    while not ok(hi):
        hi *= 2
        if hi > 2**40:
            return None
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def mde_shift(
    density_sq_integral: float,
    n_before: int,
    n_after: int,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = False,
) -> float:
    """Smallest location shift the Mann–Whitney test detects with probability ``power``.

    Noether's approximation: for a shift δ, ``P(A > B) − ½ ≈ δ·∫f²``, and U is normal with
    variance ``n_a·n_b·(N+1)/12``, so ``δ = (z_α + z_β)·sqrt(N / (12·n_a·n_b)) / ∫f²``.
    ``density_sq_integral`` (∫f², units 1/value) comes from the baseline histogram. Valid for
    shifts small against the spread; ties (heavy bins) make the real test somewhat stronger.
    """
    if n_before <= 0 or n_after <= 0 or not density_sq_integral > 0:
        return math.inf
    za = upper_quantile(alpha / 2 if two_sided else alpha)
    n = n_before + n_after
    return (
        (za + upper_quantile(1 - power))
        * math.sqrt(n / (12 * n_before * n_after))
        / density_sq_integral
    )


def noncentrality_for_power(df: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The noncentrality λ at which a level-``alpha`` chi-square test on ``df`` has ``power``."""
    from scipy.optimize import brentq
    from scipy.stats import chi2, ncx2

    crit = chi2.isf(alpha, df)
    hi = 1.0
    while ncx2.sf(crit, df, hi) < power:
        hi *= 2
    return float(brentq(lambda lam: ncx2.sf(crit, df, lam) - power, 0.0, hi, xtol=1e-9))


def mde_w(df: int, n_before: int, n_after: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest allocation-free Cohen's w the chi-square homogeneity test detects.

    For a 2 × K table the statistic is noncentral chi-square with ``λ = n_b·n_a/N · w²``, where
    ``w² = Σ_k (p_a,k − p_b,k)² / p̄_k``; solve ``λ`` for power and convert.
    """
    if n_before <= 0 or n_after <= 0 or df < 1:
        return math.inf
    lam = noncentrality_for_power(df, alpha, power)
    return math.sqrt(lam * (n_before + n_after) / (n_before * n_after))


def more_per_side(
    n_before: int, n_after: int, effect: float, ci_high: float, margin: float
) -> int | None:
    """How many more probes per side would decide an inconclusive result at the observed effect.

    The interval's half-width shrinks like 1/√n, so growing both sides by a factor f shrinks it
    by √f. A pass needs the upper bound below the margin (half-width < margin − effect); an
    effect already beyond the margin needs the lower bound above 0 (half-width < effect). None
    when the observed effect sits on the margin (no sample size decides it) or nothing is known.
    """
    half = ci_high - effect
    if not (math.isfinite(half) and math.isfinite(effect)) or half <= 0:
        return None
    target = margin - effect if effect < margin else effect
    if target <= 1e-12 * max(1.0, abs(margin)):
        return None
    factor = (half / target) ** 2
    if factor <= 1:
        return 0
    return math.ceil(max(n_before, n_after) * (factor - 1))
