"""Category distributions (sampling probes: which first token came out, how often).

A dropped top token shows as a changed category mix. The test is a chi-square (or G) test of
homogeneity on the 2 × K table; sparse categories are pooled so the asymptotics hold. The effect
is an allocation-free Cohen's w, ``w² = Σ_k (p_a,k − p_b,k)² / p̄_k``, whose interval comes from
inverting the noncentral chi-square — the same distribution the power calculation uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np

from canary.stats.policy import MetricPolicy
from canary.stats.power import mde_w
from canary.stats.result import TestResult, no_data

OTHER = "__other__"


def compare_distributions(
    counts_before: Mapping[str, int],
    counts_after: Mapping[str, int],
    policy: MetricPolicy,
    alpha: float = 0.05,
    power: float = 0.8,
    *,
    statistic: Literal["pearson", "g"] = "pearson",
    min_expected: float = 5.0,
) -> TestResult:
    """Chi-square (default; better calibrated at small expected counts) or G test that the
    category mix changed. Categories with an expected count below ``min_expected`` in either
    row are pooled into ``__other__`` (merged further while that is still too small); pooling uses
    only the column totals, so it does not bias the test. Any change counts as worse; the effect
    is w (≥ 0) with a 1 − 2α interval, ``mde`` the w detectable at ``power``."""
    if policy.kind != "distribution":
        raise ValueError(f"{policy.metric}: policy kind is {policy.kind!r}, not 'distribution'")
    if any(v < 0 for v in (*counts_before.values(), *counts_after.values())):
        raise ValueError(f"{policy.metric}: category counts must be non-negative")
    method = "chi-square" if statistic == "pearson" else "g-test"
    n_b, n_a = int(sum(counts_before.values())), int(sum(counts_after.values()))
    if n_b == 0 or n_a == 0:
        return no_data(policy.metric, "distribution", method, n_b, n_a, power, alpha)

    cats = [
        c
        for c in sorted(set(counts_before) | set(counts_after))
        if counts_before.get(c, 0) + counts_after.get(c, 0) > 0
    ]
    table = np.array(
        [[counts_before.get(c, 0) for c in cats], [counts_after.get(c, 0) for c in cats]],
        dtype=float,
    )
    table, labels, pooled = _pool(table, cats, min_expected)
    n = n_a + n_b
    top = max(counts_before, key=lambda c: counts_before[c]) if counts_before else cats[0]
    shares = table / table.sum(axis=1, keepdims=True)
    details: dict[str, object] = {
        "categories": len(cats),
        "pooled": pooled,
        "top_category": top,
        "tv_distance": float(0.5 * np.abs(shares[1] - shares[0]).sum()),
    }
    est_b = counts_before.get(top, 0) / n_b
    est_a = counts_after.get(top, 0) / n_a
    df = len(labels) - 1
    scale = n / (n_a * n_b)
    if df < 1:
        # Everything sits in one (possibly pooled) category: identical mixes if nothing was
        # pooled, otherwise too sparse to say.
        unseen = math.inf if pooled else 0.0
        return TestResult(
            policy.metric,
            "distribution",
            method,
            n_b,
            n_a,
            est_b,
            est_a,
            0.0,
            0.0,
            unseen,
            1.0,
            math.inf,
            power,
            alpha,
            details,
        )

    from scipy.stats import chi2_contingency

    lam_name = "pearson" if statistic == "pearson" else "log-likelihood"
    res = chi2_contingency(table, correction=False, lambda_=lam_name)
    stat, p_value = float(res.statistic), float(res.pvalue)
    lam_lo, lam_hi = _noncentrality_interval(stat, df, alpha)
    details.update({"statistic": stat, "df": df})
    return TestResult(
        metric=policy.metric,
        kind="distribution",
        method=method,
        n_before=n_b,
        n_after=n_a,
        estimate_before=est_b,
        estimate_after=est_a,
        effect=math.sqrt(max(stat - df, 0.0) * scale),
        ci_low=math.sqrt(lam_lo * scale),
        ci_high=math.sqrt(lam_hi * scale),
        p_value=p_value,
        mde=mde_w(df, n_b, n_a, alpha, power),
        power=power,
        alpha=alpha,
        details=details,
    )


def _pool(
    table: np.ndarray, cats: list[str], min_expected: float
) -> tuple[np.ndarray, list[str], int]:
    rows = table.sum(axis=1, keepdims=True)
    cols = table.sum(axis=0)
    expected_min = (rows.min() * cols / table.sum()) if table.sum() else cols
    keep = expected_min >= min_expected
    if keep.all():
        return table, cats, 0
    order = [i for i in np.argsort(-cols, kind="stable") if keep[i]]
    other = table[:, ~keep].sum(axis=1)
    kept = [table[:, i] for i in order]
    labels = [cats[i] for i in order]
    # merge the pooled column into the smallest kept ones until it is large enough
    while kept and other.sum() * rows.min() / table.sum() < min_expected:
        other = other + kept.pop()
        labels.pop()
    columns = [*kept, other] if other.sum() > 0 else kept
    labels = [*labels, OTHER] if other.sum() > 0 else labels
    return np.stack(columns, axis=1), labels, int((~keep).sum())


def _noncentrality_interval(stat: float, df: int, alpha: float) -> tuple[float, float]:
    """One-sided 1 − α bounds on λ given the observed statistic (inverting ncx2 in λ)."""
    from scipy.optimize import brentq
    from scipy.stats import chi2, ncx2

    def sf(lam: float) -> float:
        return float(chi2.sf(stat, df)) if lam <= 0 else float(ncx2.sf(stat, df, lam))

    def bracket(target: float) -> float:
        hi = max(1.0, stat)
        while sf(hi) < target:
            hi *= 2
        return hi

    lo = 0.0 if sf(0.0) >= alpha else brentq(lambda x: sf(x) - alpha, 0.0, bracket(alpha))
    hi_t = 1 - alpha
    hi = 0.0 if sf(0.0) >= hi_t else brentq(lambda x: sf(x) - hi_t, 0.0, bracket(hi_t))
    return float(lo), float(hi)
