"""Continuous metrics (entropy, logprob gaps, latency): Mann–Whitney U with a Hodges–Lehmann shift.

Inputs are histograms on shared edges, aggregated in SQL: a million answers never reach Python.
Mann–Whitney U is exact from bin counts when every value of a bin is treated as tied (midranks),
and then equals scipy's tie-corrected normal approximation on the binned values. The
Hodges–Lehmann shift (the median of all after − before differences) and its distribution-free
interval are computed assuming values spread uniformly within a bin, so the shift is resolved
below the bin width; its accuracy, though, is limited to about one bin width where the data is
not locally uniform.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from canary.stats.policy import MetricPolicy
from canary.stats.power import mde_shift, upper_quantile
from canary.stats.result import TestResult, no_data

Array = NDArray[np.float64]

EXACT_PAIRS_LIMIT = 4_000_000
"""Above n_a·n_b pairs, `compare_continuous_samples` bins the data instead of enumerating pairs."""


def compare_continuous_binned(
    edges: ArrayLike,
    counts_before: ArrayLike,
    counts_after: ArrayLike,
    policy: MetricPolicy,
    alpha: float = 0.05,
    power: float = 0.8,
) -> TestResult:
    """Mann–Whitney U from two histograms on the same ``edges`` (``len(edges) = bins + 1``).

    The p-value is the tie-corrected normal approximation with continuity correction (ties =
    same bin), one-sided towards worse, two-sided for ``two_sided`` policies. The effect is the
    Hodges–Lehmann shift after − before (sign flipped for ``lower_is_worse``) with a 1 − 2α
    interval from the Mann–Whitney null distribution; resolution limit: the bin width (values
    are taken as uniform within bins). ``details`` has Cliff's delta (after vs before), U, z and
    the largest occupied bin width.
    """
    e = np.asarray(edges, dtype=float)
    cb = np.asarray(counts_before, dtype=float)
    ca = np.asarray(counts_after, dtype=float)
    if e.ndim != 1 or len(e) < 2 or not np.all(np.diff(e) > 0) or not np.all(np.isfinite(e)):
        raise ValueError(f"{policy.metric}: edges must be finite and strictly increasing")
    if cb.shape != (len(e) - 1,) or ca.shape != (len(e) - 1,):
        raise ValueError(f"{policy.metric}: need {len(e) - 1} counts per side for {len(e)} edges")
    if np.any(cb < 0) or np.any(ca < 0):
        raise ValueError(f"{policy.metric}: counts must be non-negative")
    _check_kind(policy)
    n_b, n_a = int(cb.sum()), int(ca.sum())
    method = "mann-whitney-binned"
    if n_b == 0 or n_a == 0:
        return no_data(policy.metric, "continuous", method, n_b, n_a, power, alpha)

    u, sigma = _mwu_from_counts(cb, ca)
    widths = np.diff(e)
    comps = _difference_components(e, cb, ca)
    z_ci = upper_quantile(alpha)
    hl, lo, hi = _hl_with_ci(comps, n_b, n_a, sigma, z_ci)
    occupied = (cb + ca) > 0
    mids = (e[:-1] + e[1:]) / 2
    details: dict[str, Any] = {
        "u_statistic": u,
        "cliffs_delta": 2 * u / (n_a * n_b) - 1,
        "bin_width": float(widths[occupied].max()),
        "mean_before": float(mids @ cb / n_b),
        "mean_after": float(mids @ ca / n_a),
    }
    density_sq = _density_sq_from_hist(cb if n_b >= 2 else cb + ca, widths)
    return _finish(
        policy,
        method,
        n_b,
        n_a,
        u,
        sigma,
        hl,
        lo,
        hi,
        _hist_median(e, cb),
        _hist_median(e, ca),
        density_sq,
        alpha,
        power,
        details,
    )


def compare_continuous_samples(
    before: ArrayLike,
    after: ArrayLike,
    policy: MetricPolicy,
    alpha: float = 0.05,
    power: float = 0.8,
) -> TestResult:
    """Mann–Whitney U and the Hodges–Lehmann shift on raw values (NaN dropped), for small data.

    Uses scipy's ``mannwhitneyu`` (exact for small samples without ties) and the exact pairwise
    differences; past `EXACT_PAIRS_LIMIT` pairs it bins both samples on 2048 shared bins and
    delegates to `compare_continuous_binned`.
    """
    b = np.asarray(before, dtype=float)
    a = np.asarray(after, dtype=float)
    b, a = b[~np.isnan(b)], a[~np.isnan(a)]
    _check_kind(policy)
    n_b, n_a = len(b), len(a)
    method = "mann-whitney"
    if n_b == 0 or n_a == 0:
        return no_data(policy.metric, "continuous", method, n_b, n_a, power, alpha)
    if n_b * n_a > EXACT_PAIRS_LIMIT:
        lo_v, hi_v = float(min(b.min(), a.min())), float(max(b.max(), a.max()))
        if hi_v <= lo_v:
            hi_v = lo_v + 1.0
        edges = np.linspace(lo_v, hi_v, 2049)
        cb = np.histogram(b, edges)[0]
        ca = np.histogram(a, edges)[0]
        return compare_continuous_binned(
            edges.tolist(), cb.tolist(), ca.tolist(), policy, alpha, power
        )

    from scipy.stats import mannwhitneyu

    u = float(mannwhitneyu(a, b, alternative="greater").statistic)
    _, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    sigma = _mwu_sigma(n_b, n_a, counts.astype(float))
    diffs = np.sort(np.subtract.outer(a, b).ravel())
    hl = float(np.median(diffs))
    k = _ci_rank(n_b, n_a, sigma, upper_quantile(alpha))
    lo, hi = float(diffs[k]), float(diffs[len(diffs) - 1 - k])
    hist, hedges = np.histogram(b if n_b >= 2 else np.concatenate([a, b]), bins="fd")
    density_sq = _density_sq_from_hist(hist.astype(float), np.diff(hedges))
    alt = {"two_sided": "two-sided", "higher_is_worse": "greater", "lower_is_worse": "less"}
    p_scipy = float(mannwhitneyu(a, b, alternative=alt[policy.direction]).pvalue)
    details: dict[str, Any] = {
        "u_statistic": u,
        "cliffs_delta": 2 * u / (n_a * n_b) - 1,
        "mean_before": float(b.mean()),
        "mean_after": float(a.mean()),
    }
    return _finish(
        policy,
        method,
        n_b,
        n_a,
        u,
        sigma,
        hl,
        lo,
        hi,
        float(np.median(b)),
        float(np.median(a)),
        density_sq,
        alpha,
        power,
        details,
        p_override=p_scipy,
    )


def _finish(
    policy: MetricPolicy,
    method: str,
    n_b: int,
    n_a: int,
    u: float,
    sigma: float,
    hl: float,
    lo: float,
    hi: float,
    med_b: float,
    med_a: float,
    density_sq: float,
    alpha: float,
    power: float,
    details: dict[str, Any],
    p_override: float | None = None,
) -> TestResult:
    from scipy.stats import norm

    mu = n_a * n_b / 2
    if sigma > 0:
        p_greater = float(norm.sf((u - mu - 0.5) / sigma))
        p_less = float(norm.sf((n_a * n_b - u - mu - 0.5) / sigma))
        details["z"] = (u - mu) / sigma
    else:  # every value in one bin: no evidence either way
        p_greater = p_less = 1.0
    direction = policy.direction
    if direction == "lower_is_worse":
        effect, ci_low, ci_high, p_value = -hl, -hi, -lo, p_less
    elif direction == "higher_is_worse":
        effect, ci_low, ci_high, p_value = hl, lo, hi, p_greater
    else:
        effect, ci_low, ci_high, p_value = hl, lo, hi, 2 * min(p_greater, p_less)
    if p_override is not None and sigma > 0:
        p_value = p_override
    return TestResult(
        metric=policy.metric,
        kind="continuous",
        method=method,
        n_before=n_b,
        n_after=n_a,
        estimate_before=med_b,
        estimate_after=med_a,
        effect=effect,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=min(1.0, p_value),
        mde=mde_shift(density_sq, n_b, n_a, alpha, power, two_sided=direction == "two_sided"),
        power=power,
        alpha=alpha,
        details=details,
    )


def _check_kind(policy: MetricPolicy) -> None:
    if policy.kind != "continuous":
        raise ValueError(f"{policy.metric}: policy kind is {policy.kind!r}, not 'continuous'")


def _mwu_sigma(n_b: int, n_a: int, tie_counts: Array) -> float:
    n = n_a + n_b
    tie = float(np.sum(tie_counts**3 - tie_counts))
    var = n_a * n_b / 12 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    return math.sqrt(max(var, 0.0))


def _mwu_from_counts(cb: Array, ca: Array) -> tuple[float, float]:
    """U of the after sample (pairs with after > before, ties count ½) and its tie-corrected sd."""
    below = np.concatenate([[0.0], np.cumsum(cb)[:-1]])
    u = float(ca @ (below + 0.5 * cb))
    return u, _mwu_sigma(int(cb.sum()), int(ca.sum()), cb + ca)


def _ci_rank(n_b: int, n_a: int, sigma: float, z: float) -> int:
    """0-based index of the lower interval bound among the sorted n_a·n_b differences."""
    k = math.floor(n_a * n_b / 2 - z * sigma) - 1  # the C-th smallest, C = ⌊mn/2 − zσ⌋
    return min(max(k, 0), (n_a * n_b - 1) // 2)


def _difference_components(e: Array, cb: Array, ca: Array) -> tuple[Array, Array, Array, Array]:
    """The after − before difference as a mixture of sums of two uniforms:
    ``start + U(0, w1) + U(0, w2)`` with weights (one component per pair of occupied bins, or
    per bin offset when bins are uniform)."""
    widths = np.diff(e)
    if np.allclose(widths, widths[0], rtol=1e-9, atol=0):
        w = float(widths[0])
        weights = np.convolve(ca, cb[::-1])  # index d + (B - 1) for offset d = j - i
        offsets = np.arange(len(weights)) - (len(cb) - 1)
        keep = weights > 0
        start: Array = (offsets[keep] * w - w).astype(np.float64)
        ones: Array = np.full(int(keep.sum()), w, dtype=np.float64)
        return start, ones, ones.copy(), weights[keep].astype(np.float64)
    ib, ja = np.nonzero(cb)[0], np.nonzero(ca)[0]
    grid_j, grid_i = np.meshgrid(ja, ib, indexing="ij")
    jj, ii = grid_j.ravel(), grid_i.ravel()
    return e[jj] - e[ii + 1], widths[jj], widths[ii], ca[jj] * cb[ii]


def _mixture_cdf(s: float, comps: tuple[Array, Array, Array, Array]) -> float:
    start, w1, w2, wt = comps

    def g(t: Array) -> Array:
        return np.square(np.maximum(t, 0.0)) / 2

    t = s - start
    f = (g(t) - g(t - w1) - g(t - w2) + g(t - w1 - w2)) / (w1 * w2)
    return float(np.clip(f, 0.0, 1.0) @ wt / wt.sum())


def _mixture_quantile(q: float, comps: tuple[Array, Array, Array, Array]) -> float:
    from scipy.optimize import brentq

    start, w1, w2, _ = comps
    lo, hi = float(start.min()), float((start + w1 + w2).max())
    if q <= 0:
        return lo
    if q >= 1:
        return hi
    return float(brentq(lambda s: _mixture_cdf(s, comps) - q, lo, hi, xtol=1e-12 * (hi - lo)))


def _hl_with_ci(
    comps: tuple[Array, Array, Array, Array], n_b: int, n_a: int, sigma: float, z: float
) -> tuple[float, float, float]:
    pairs = n_a * n_b
    q_lo = max(math.floor(pairs / 2 - z * sigma), 0) / pairs
    return (
        _mixture_quantile(0.5, comps),
        _mixture_quantile(q_lo, comps),
        _mixture_quantile(1 - q_lo, comps),
    )


def _hist_median(e: Array, c: Array) -> float:
    cum = np.cumsum(c)
    half = cum[-1] / 2
    j = int(np.searchsorted(cum, half))
    prev = cum[j - 1] if j > 0 else 0.0
    frac = (half - prev) / c[j] if c[j] > 0 else 0.5
    return float(e[j] + frac * (e[j + 1] - e[j]))


def _density_sq_from_hist(c: Array, widths: Array) -> float:
    """∫f² from a histogram: unbiased pair-count estimate, plug-in when that is zero."""
    n = float(c.sum())
    if n < 2:
        return math.nan
    unbiased = float(np.sum(c * (c - 1) / widths) / (n * (n - 1)))
    return unbiased if unbiased > 0 else float(np.sum(c * c / widths) / (n * n))
