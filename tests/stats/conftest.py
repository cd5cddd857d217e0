"""Shared helpers for the statistics tests: seeded simulations and a binomial tolerance."""

from __future__ import annotations

from scipy.stats import binom

SEEDS = 300
ALPHA = 0.05


def fp_ceiling(trials: int = SEEDS, alpha: float = ALPHA) -> float:
    """The largest false-positive share consistent with a true rate of α (one-sided 99.9%)."""
    return float(binom.ppf(0.999, trials, alpha)) / trials


def power_floor(trials: int, power: float) -> float:
    """The smallest detection share consistent with a true power of ``power`` (99.9%)."""
    return float(binom.ppf(0.001, trials, power)) / trials
