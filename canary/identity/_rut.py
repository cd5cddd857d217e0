"""The rank-uniformity test (RUT): one endpoint sample per prompt, ranked among reference ones.

For each prompt, the endpoint's completion is scored by the reference's log-likelihood and
ranked among m completions the local reference sampled with the same parameters. Under the null
(the endpoint samples the reference's distribution) the endpoint's completion is exchangeable
with the m reference ones, so its rank, randomised over ties, is uniform on {0..m}; the
randomised ranks (r + V)/(m + 1), V ~ U(0, 1), are then exactly U(0, 1) and scipy's
Cramér–von Mises test measures the departure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RUTest:
    """Cramér–von Mises test of the endpoint's randomised ranks against U(0, 1)."""

    statistic: float
    p_value: float
    prompts: int
    reference_samples: int
    mean_rank: float
    """Mean of the randomised ranks: 0.5 under the null, low when the endpoint's text is less
    likely under the reference than the reference's own samples."""


def randomized_ranks(
    endpoint: Sequence[float], reference: Sequence[Sequence[float]], *, seed: int = 0
) -> list[float]:
    """(number of reference scores below + V · (ties + 1)) / (m + 1) per prompt, in (0, 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for score, refs in zip(endpoint, reference, strict=True):
        values = np.asarray(refs, dtype=float)
        below = float(np.sum(values < score))
        ties = float(np.sum(values == score))
        out.append((below + rng.uniform() * (ties + 1)) / (len(values) + 1))
    return out


def rank_uniformity_test(
    endpoint: Sequence[float] | np.ndarray,
    reference: Sequence[Sequence[float]] | np.ndarray,
    *,
    seed: int = 0,
) -> RUTest:
    """RUT over prompts with a finite endpoint score and at least one reference score."""
    from scipy.stats import cramervonmises

    pairs = [
        (float(s), [float(r) for r in refs if math.isfinite(r)])
        for s, refs in zip(endpoint, reference, strict=True)
        if math.isfinite(s)
    ]
    pairs = [(s, refs) for s, refs in pairs if refs]
    if len(pairs) < 2:
        return RUTest(math.nan, 1.0, len(pairs), 0, math.nan)
    ranks = randomized_ranks([s for s, _ in pairs], [r for _, r in pairs], seed=seed)
    res = cramervonmises(ranks, "uniform")
    return RUTest(
        statistic=float(res.statistic),
        p_value=float(res.pvalue),
        prompts=len(pairs),
        reference_samples=min(len(r) for _, r in pairs),
        mean_rank=float(np.mean(ranks)),
    )
