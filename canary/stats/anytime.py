"""Anytime-valid two-sample tests: e-processes by betting, and e-BH across a family.

A deploy gate looks at the data after every round and stops as soon as it can. A fixed-n test
checked that way has an unbounded false-decision rate; an *e-process* does not: it is a
nonnegative process with ``E[e_τ] ≤ 1`` at every stopping time τ under its null, so by Ville's
inequality ``P(e ever reaches 1/α) ≤ α`` however often it is checked.

One-sample (`log_e_above`, `log_e_below`): values in [0, 1] (rates are 0/1, a binned metric is
rescaled by its bins) tested by betting (Waudby-Smith & Ramdas, "Estimating means of bounded
random variables by betting", JRSS-B 2023): the capital of a bettor who stakes a fraction ``c``
of the largest safe bet on each observation is a test martingale under "mean ≤ μ" (resp. ≥ μ).
We average a fixed grid of fractions (a mixture of martingales is one), which costs ln(len(grid))
nats against the best fraction in hindsight and, because each bet is constant, depends on the
observations only through their histogram: a round's aggregate is all it needs.

Two-sample (`two_sample_log_e`): the before side is a fixed sample, the after side grows. For the
null "after − before ≤ δ", under the null the true after-mean μ_a makes both "before-mean ≥
μ_a − δ" (tested on the before sample) and "after-mean ≤ μ_a" (on the after stream) true, so the
product of those two independent e-values at μ = μ_a is an e-process, and so is its infimum over
all μ. The infimum is bounded below on a grid using that one factor rises and the other falls in
μ, so the grid never makes the test liberal.

Paired (`paired_log_e`): when the same probe ran on both sides, each after result is matched with
one unused before result of that probe; the differences D ∈ [−1, 1] have mean 0 under an
unchanged fleet whatever each probe's own rate is, which is where the power is (the probe's
difficulty cancels).

Family: `e_bh` (Wang & Ramdas, "False discovery rate control with e-values", JRSS-B 2022)
controls the FDR at α for e-values under ARBITRARY dependence (cohorts share a baseline, metrics
share results), with no correction beyond the family size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Side = Literal["above", "below"]

#: Fractions of the largest safe bet: 0.95 down to 2^-12 (small ones for small effects, big ones
#: for a clean stream that must beat a margin quickly).
BET_FRACTIONS: NDArray[np.float64] = np.array([0.95, *[0.5**j for j in range(1, 13)]])
#: Fractions for paired differences: with the probe's difficulty cancelled, the differences are
#: mostly 0 and the best bets are large, so fewer, larger fractions (ln 5 rather than ln 13).
PAIRED_FRACTIONS: NDArray[np.float64] = np.array([0.8, 0.6, 0.45, 0.3, 0.15])
#: Points of the μ grid of the two-sample infimum (plus the region around the estimates).
MU_GRID = 257


@dataclass(frozen=True)
class Sample:
    """Values in [0, 1] with their counts (a histogram: a rate is ``[0, 1]`` with ``[n−k, k]``)."""

    values: NDArray[np.float64]
    counts: NDArray[np.float64]

    @classmethod
    def of(cls, values: ArrayLike, counts: ArrayLike | None = None) -> Sample:
        v = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
        c = np.ones_like(v) if counts is None else np.asarray(counts, dtype=float)
        if v.shape != c.shape or (c < 0).any():
            raise ValueError("values and nonnegative counts must have the same shape")
        keep = c > 0
        return cls(v[keep], c[keep])

    @classmethod
    def rate(cls, k: int, n: int) -> Sample:
        if not 0 <= k <= n:
            raise ValueError(f"need 0 ≤ k ≤ n, got {k}/{n}")
        return cls.of([0.0, 1.0], [n - k, k])

    @property
    def n(self) -> float:
        return float(self.counts.sum())

    @property
    def mean(self) -> float:
        return float((self.values * self.counts).sum() / self.n) if self.n else math.nan


def _logmeanexp(x: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
    top = np.max(x, axis=axis, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore"):
        out = np.log(np.mean(np.exp(x - safe), axis=axis, keepdims=True)) + safe
    out = np.where(np.isposinf(top), np.inf, out)
    return np.squeeze(out, axis=axis)


def _log_capital(
    sample: Sample,
    mu: NDArray[np.float64],
    side: Side,
    fractions: NDArray[np.float64] = BET_FRACTIONS,
) -> NDArray[np.float64]:
    """log of the grid-averaged capital against "mean ≤ μ" (``above``: betting the mean is
    above μ) or "mean ≥ μ" (``below``), for each μ; +inf where the data rule μ out outright."""
    mu = np.atleast_1d(np.asarray(mu, dtype=float))
    c = fractions[None, None, :]
    x = sample.values[None, :, None]
    m = mu[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if side == "above":  # factor 1 + (c/μ)(x − μ) = 1 − c + c·x/μ
            factor = 1 - c + c * np.where(x > 0, x / m, 0.0)
        else:  # factor 1 + (c/(1−μ))(μ − x) = 1 − c + c·(1−x)/(1−μ)
            factor = 1 - c + c * np.where(x < 1, (1 - x) / (1 - m), 0.0)
        logs = np.log(factor) * sample.counts[None, :, None]
    total = np.sum(np.where(np.isnan(logs), 0.0, logs), axis=1)
    out = _logmeanexp(total, axis=-1)
    # μ outside [0, 1] cannot be a mean: the null is empty there.
    bad = (mu < 0) | (mu > 1)
    return np.where(bad, np.inf, out)


def log_e_above(sample: Sample, mu: float, fractions: NDArray[np.float64] = BET_FRACTIONS) -> float:
    """log e-value against "the mean is ≤ μ" (large when the mean is above μ)."""
    return float(_log_capital(sample, np.array([mu]), "above", fractions)[0])


def log_e_below(sample: Sample, mu: float, fractions: NDArray[np.float64] = BET_FRACTIONS) -> float:
    """log e-value against "the mean is ≥ μ" (large when the mean is below μ)."""
    return float(_log_capital(sample, np.array([mu]), "below", fractions)[0])


def _mu_grid(*centres: float) -> NDArray[np.float64]:
    base = np.linspace(0.0, 1.0, MU_GRID)
    fine = [base]
    for c in centres:
        if math.isfinite(c):
            fine.append(np.clip(c + np.geomspace(1e-6, 0.2, 64), 0, 1))
            fine.append(np.clip(c - np.geomspace(1e-6, 0.2, 64), 0, 1))
    return np.unique(np.concatenate(fine))


def two_sample_log_e(before: Sample, after: Sample, delta: float, null: Side) -> float:
    """log e-process against "after − before ≤ δ" (``null="below"``: evidence the after-mean is
    worse by more than δ) or "after − before ≥ δ" (``null="above"``: evidence it is worse by less
    than δ, i.e. it passes a margin δ). Values are oriented so that higher is worse."""
    if before.n == 0 or after.n == 0:
        return 0.0
    mu = _mu_grid(after.mean, before.mean + delta)
    if null == "below":
        # inf_μ E_B[before ≥ μ−δ] · E_A[after ≤ μ]: E_B rises in μ, E_A falls.
        rising = _log_capital(before, mu - delta, "below")
        falling = _log_capital(after, mu, "above")
    else:
        # inf_μ E_A[after ≥ μ] · E_B[before ≤ μ−δ]: E_A rises in μ, E_B falls.
        rising = _log_capital(after, mu, "below")
        falling = _log_capital(before, mu - delta, "above")
    # On [μ_i, μ_i+1] the product is ≥ rising(μ_i) + falling(μ_i+1): a valid lower bound.
    with np.errstate(invalid="ignore"):
        bound = rising[:-1] + falling[1:]
    bound = np.where(np.isnan(bound), np.inf, bound)
    return float(np.min(bound))


def paired_log_e(diffs: Sample, delta: float, null: Side) -> float:
    """log e-process on paired differences after − before, given as ``(D + 1) / 2`` ∈ [0, 1]:
    against "mean D ≤ δ" (``below``: regression) or "mean D ≥ δ" (``above``: pass)."""
    if diffs.n == 0:
        return 0.0
    mu = (1 + delta) / 2
    if null == "below":
        return log_e_above(diffs, mu, PAIRED_FRACTIONS)
    return log_e_below(diffs, mu, PAIRED_FRACTIONS)


def e_bh(e_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """e-BH (Wang & Ramdas 2022): reject the k largest e-values, k the largest with
    ``e_(k) ≥ K / (α·k)``. FDR ≤ α under any dependence; NaN e-values count as 1."""
    k_total = len(e_values)
    order = sorted(range(k_total), key=lambda i: -_e(e_values[i]))
    cut = 0
    for rank, i in enumerate(order, start=1):
        if _e(e_values[i]) >= k_total / (alpha * rank):
            cut = rank
    chosen = set(order[:cut])
    return [i in chosen for i in range(k_total)]


def _e(value: float) -> float:
    return 1.0 if math.isnan(value) else value


def to_e(log_e: float) -> float:
    """exp, saturating at +inf instead of overflowing."""
    return math.inf if log_e > 700 else math.exp(log_e)
