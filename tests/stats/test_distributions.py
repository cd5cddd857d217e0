"""Category distributions: chi-square/G with pooling, A/A calibration and a dropped top token."""

from __future__ import annotations

import numpy as np
import pytest

from canary.stats import DEFAULT_POLICIES, compare_distributions, decide
from tests.stats.conftest import ALPHA, SEEDS, fp_ceiling

FIRST = DEFAULT_POLICIES["sampling_first_token"]
TOKENS = ["The", "A", "In", "This", "It", "To", "An", "For", "We", "One", "So", "If"]
PROBS = np.array([0.45, 0.2, 0.1, 0.08, 0.05, 0.04, 0.03, 0.02, 0.01, 0.01, 0.005, 0.005])


def draw(rng: np.random.Generator, n: int, probs: np.ndarray = PROBS) -> dict[str, int]:
    return {t: int(c) for t, c in zip(TOKENS, rng.multinomial(n, probs), strict=True)}


@pytest.mark.parametrize("statistic", ["pearson", "g"])
def test_aa_false_positive_rate_is_at_most_alpha(statistic: str) -> None:
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(SEEDS):
        r = compare_distributions(draw(rng, 400), draw(rng, 200), FIRST, statistic=statistic)  # type: ignore[arg-type]
        hits += r.p_value < ALPHA
    print(f"A/A distribution ({statistic}): false-positive rate {hits / SEEDS:.3f}")
    assert hits / SEEDS <= fp_ceiling()


def test_dropped_top_token_is_a_regression() -> None:
    rng = np.random.default_rng(1)
    faulty = PROBS.copy()
    faulty[0] -= 0.15  # the top token dropped on a third of its draws, mass moves to the next
    faulty[1] += 0.15
    found = 0
    for _ in range(50):
        r = compare_distributions(draw(rng, 2000), draw(rng, 1000, faulty), FIRST)
        found += decide(r, r.p_value, FIRST, ALPHA) == "regression"
    assert found >= 48


def test_sparse_categories_are_pooled_and_large_same_mix_passes() -> None:
    rng = np.random.default_rng(2)
    r = compare_distributions(draw(rng, 100_000), draw(rng, 100_000), FIRST)
    assert decide(r, r.p_value, FIRST, ALPHA) == "pass"
    small = compare_distributions({"a": 30, "b": 2, "c": 1}, {"a": 25, "d": 1}, FIRST)
    assert small.details["pooled"] >= 1
    assert decide(small, small.p_value, FIRST, ALPHA) == "inconclusive"


def test_no_data_and_single_category() -> None:
    assert decide(compare_distributions({}, {"a": 3}, FIRST), float("nan"), FIRST) == "no_data"
    same = compare_distributions({"a": 50}, {"a": 40}, FIRST)
    assert same.p_value == 1.0 and decide(same, 1.0, FIRST) == "pass"
