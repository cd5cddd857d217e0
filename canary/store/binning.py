"""Fixed bins in SQL: the bin index of a column, clamped as `histogram_counts` clamps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func


@dataclass(frozen=True)
class Bins:
    """Fixed bins: ``bins`` equal steps of [lo, hi] (of ln x for ``log``), ends clamped."""

    lo: float
    hi: float
    bins: int
    scale: str = "linear"


def bin_index(column: Any, bins: Bins) -> ColumnElement[Any]:
    """The bin index of ``column`` in SQL, clamped to [0, bins − 1] (`histogram_counts`' rule)."""
    if bins.scale == "log":
        lo = math.log(bins.lo)
        width = (math.log(bins.hi) - lo) / bins.bins
        floored = case((column < bins.lo, bins.lo), else_=column)  # ln(≤ 0) is an error
        raw = func.floor((func.ln(floored) - lo) / width)
    else:
        width = (bins.hi - bins.lo) / bins.bins
        raw = func.floor((column - bins.lo) / width)
    return case((raw < 0, 0), (raw > bins.bins - 1, bins.bins - 1), else_=raw)
