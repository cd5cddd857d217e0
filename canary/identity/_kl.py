"""Per-position KL between an endpoint's top-k logprobs and a reference distribution, and
the summary serving engines report for a quantization.

An endpoint reports only its top-k, so KL is taken over the union of both top-k sets plus one
residual bucket (`bucket_kl`, shared with the `model_equality` detector, which explains the
imputation of tokens a side did not report).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from canary.detectors.model_equality import bucket_kl

__all__ = ["KLSummary", "bucket_kl", "summarize"]


@dataclass(frozen=True)
class KLSummary:
    """The effect sizes serving engines report for a quantization, over all positions."""

    positions: int
    mean_kl: float
    p99_kl: float
    same_top1: float
    """Share of positions where the endpoint's top token is the reference's."""


def summarize(kls: Sequence[float], same_top1: Sequence[bool]) -> KLSummary:
    """Mean and 99th percentile of per-position KL, and the same-top-1 share."""
    import numpy as np

    if not kls:
        return KLSummary(0, math.nan, math.nan, math.nan)
    values = np.asarray(kls, dtype=float)
    return KLSummary(
        positions=len(values),
        mean_kl=float(values.mean()),
        p99_kl=float(np.quantile(values, 0.99)),
        same_top1=float(np.mean(np.asarray(same_top1, dtype=bool))) if same_top1 else math.nan,
    )
