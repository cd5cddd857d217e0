"""First-token logprob tracking (Chauvin et al., 2025): has the served model changed?

The same prompt is sent many times; each answer's first-token top-k logprobs form a vector.
Two sets of such vectors (the endpoint now, and a trusted side: a stored baseline's results or
another endpoint) are compared per prompt with scipy's permutation test on the distance between
their mean vectors, and the prompts' p-values are combined with Fisher's method.

The trusted side must be a serving stack too: against the deterministic reference, honest
serving noise (batching, bf16) alone would separate the two sets, so `canary identity` uses this
test only with `--against baseline:NAME` or `endpoint:Y`.

A permutation test sees any systematic difference, however small: a baseline captured while the
server batched differently separates from today's answers by a few 1e-6 nats of float
rounding. So a prompt whose mean vectors are closer than `tolerance` counts as the same
(p = 1, which only makes the test more conservative): the default sits between honest serving
numerics and a changed model, measured on the shipped model's first tokens (median shift
against fp32, `python -m benchmarks.model_equality --quick`: bf16 0.036, int8 0.021, int4 0.34,
the substitute checkpoint 1.1 nats).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Mean-vector distance (nats) below which two sides' first tokens are serving numerics.
DEFAULT_TRACKING_TOLERANCE = 0.1


@dataclass(frozen=True)
class TrackingTest:
    """Fisher-combined permutation p-value over prompts, and the largest mean shift seen."""

    p_value: float
    prompts: int
    samples: int
    max_shift: float
    """Largest distance between the two mean vectors (nats), over prompts."""
    per_prompt: dict[int, float]
    """Prompt index → its permutation p-value (1 for a shift within the tolerance)."""
    tolerance: float = DEFAULT_TRACKING_TOLERANCE


def align(
    a: Sequence[Mapping[str, float]], b: Sequence[Mapping[str, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' vectors on the tokens every answer reports; a missing token sits at the
    answer's smallest reported logprob (it was below the top-k)."""
    seen: dict[str, int] = {}
    for top in [*a, *b]:
        for key in top:
            seen[key] = seen.get(key, 0) + 1
    keys = sorted(seen, key=lambda k: -seen[k])[:20]

    def rows(side: Sequence[Mapping[str, float]]) -> np.ndarray:
        out = np.zeros((len(side), len(keys)))
        for i, top in enumerate(side):
            floor = min(top.values()) if top else -30.0
            out[i] = [top.get(key, floor) for key in keys]
        return out

    return rows(a), rows(b)


def _distance(x: np.ndarray, y: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.sqrt(((x.mean(axis=axis) - y.mean(axis=axis)) ** 2).sum(axis=-1))


def tracking_test(
    a: Sequence[Sequence[Mapping[str, float]]],
    b: Sequence[Sequence[Mapping[str, float]]],
    *,
    n_resamples: int = 999,
    seed: int = 0,
    tolerance: float = DEFAULT_TRACKING_TOLERANCE,
) -> TrackingTest:
    """Per prompt p: a[p] and b[p] are first-token top-k dicts of repeated answers; a prompt
    whose mean vectors are within ``tolerance`` nats is not tested (p = 1)."""
    from scipy.stats import combine_pvalues, permutation_test

    rng = np.random.default_rng(seed)
    pvalues: dict[int, float] = {}
    shifts: list[float] = []
    samples = 0
    for index, (xs, ys) in enumerate(zip(a, b, strict=True)):
        if len(xs) < 2 or len(ys) < 2:
            continue
        x, y = align(xs, ys)
        samples += len(x) + len(y)
        shift = float(_distance(x, y))
        shifts.append(shift)
        if shift <= tolerance:  # serving numerics (or identical vectors): not a change
            pvalues[index] = 1.0
            continue
        res = permutation_test(
            (x, y),
            lambda u, v, axis: _distance(u, v, axis=axis),
            permutation_type="independent",
            alternative="greater",
            n_resamples=n_resamples,
            vectorized=True,
            axis=0,
            rng=rng,
        )
        pvalues[index] = float(res.pvalue)
    if not pvalues:
        return TrackingTest(1.0, 0, 0, math.nan, {}, tolerance)
    combined = combine_pvalues(list(pvalues.values()), method="fisher").pvalue
    return TrackingTest(float(combined), len(pvalues), samples, max(shifts), pvalues, tolerance)
