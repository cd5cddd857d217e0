"""Correction across the many cohort × metric tests of one comparison (FDR) or of one
question asked of many pools (family-wise error)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

FdrMethod = Literal["bh", "by"]


def adjust_pvalues(p_values: Sequence[float], method: FdrMethod = "bh") -> list[float]:
    """False-discovery-rate q-values (scipy's ``false_discovery_control``).

    ``bh`` (Benjamini–Hochberg) controls the FDR for independent or positively dependent tests —
    the cohorts of one comparison are independent samples and a fault moves related metrics the
    same way; ``by`` (Benjamini–Yekutieli) holds under any dependence at a cost in power.
    NaN p-values (no data) are left out of the family and come back as NaN.
    """
    from scipy.stats import false_discovery_control

    finite = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    out = [math.nan] * len(p_values)
    if finite:
        qs = false_discovery_control([p_values[i] for i in finite], method=method)
        for i, q in zip(finite, qs, strict=True):
            out[i] = float(q)
    return out


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values: family-wise error control under any dependence, for
    "is any of these different" questions where one false "this pool is broken" misleads
    on-call. NaN p-values (no data) are left out of the family and come back as NaN."""
    finite = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        out[i] = running
    return out
