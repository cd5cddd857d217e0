"""Analytic MDE and sample sizes: monotone, consistent, and honest at a zero baseline."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import hypergeom

from canary.stats import mde_rate, mde_w, required_n


def test_mde_shrinks_with_n_and_required_n_inverts_it() -> None:
    assert mde_rate(0.001, 1000, 1000) > mde_rate(0.001, 10_000, 10_000)
    n = required_n(0.001, 0.004)
    assert n is not None
    assert mde_rate(0.001, n, n) <= 0.004 < mde_rate(0.001, n - 1, n - 1)
    assert required_n(0.001, 0.004, n_before=200) is None  # the baseline is too small
    assert math.isinf(mde_rate(0.0, 100, 100, direction="lower_is_worse"))


def test_mde_at_a_zero_baseline_is_conservative_for_fisher() -> None:
    """Exact Fisher power at the analytic MDE over a 0/5000 baseline is at least 80%."""
    n_b, n_a = 5000, 1000
    mde = mde_rate(0.0, n_b, n_a)
    rng = np.random.default_rng(0)
    ks = rng.binomial(n_a, mde, 2000)
    p = hypergeom(n_b + n_a, ks, n_a).sf(ks - 1)  # baseline count 0
    assert 0.002 < mde < 0.005
    assert (p < 0.05).mean() >= 0.8


def test_mde_w_grows_with_df() -> None:
    assert mde_w(1, 1000, 1000) < mde_w(10, 1000, 1000)
