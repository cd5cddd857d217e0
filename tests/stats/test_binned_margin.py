"""The margin test on per-probe KLs known only as a histogram (the report's served-model
table) decides as the bootstrap test on the raw values does."""

from __future__ import annotations

import numpy as np
import pytest

from canary.compare.served import representatives
from canary.stats import Binning
from canary.stats.equivalence import binned_margin_test, kl_margin_test

BINS = Binning(lo=1e-6, hi=10.0, bins=140, scale="log")


def binned(values: np.ndarray) -> list[int]:
    edges = np.asarray(BINS.edges())
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, BINS.bins - 1)
    return np.bincount(index, minlength=BINS.bins).tolist()


@pytest.mark.parametrize(
    ("scale", "expected"),
    [(1e-4, "same"), (1.5e-2, "different")],  # an honest bf16 copy; a 4-bit build
)
def test_binned_and_raw_tests_agree(scale: float, expected: str) -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(np.log(scale), 0.6, size=400)
    raw = kl_margin_test(values)
    from_bins = binned_margin_test(representatives(BINS, BINS.bins), binned(values))
    assert raw.verdict == from_bins.verdict == expected
    assert from_bins.mean == pytest.approx(raw.mean, rel=0.05)


def test_few_probes_or_a_mean_at_the_margin_are_inconclusive() -> None:
    values = representatives(BINS, BINS.bins)
    counts = [0] * BINS.bins
    counts[0] = 5
    assert binned_margin_test(values, counts).verdict == "inconclusive"
    rng = np.random.default_rng(5)
    near = rng.lognormal(np.log(2e-3), 1.0, size=60) * np.exp(-0.5)  # mean ≈ the margin
    assert binned_margin_test(values, binned(near)).verdict == "inconclusive"


def test_zero_spread_decides_by_the_mean() -> None:
    values = representatives(BINS, BINS.bins)
    counts = [0] * BINS.bins
    counts[0] = 50  # fp32 against itself: every probe at 0
    test = binned_margin_test(values, counts)
    assert test.verdict == "same" and test.p_same == 0.0
