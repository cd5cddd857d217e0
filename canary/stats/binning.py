"""Fixed histogram bins of a continuous metric, shared by the policy and the metric kinds.

Continuous metrics are compared as histograms on fixed per-metric edges, so a baseline captured
months ago and today's data share edges without either side re-binning.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BinScale = Literal["linear", "log"]


class Binning(BaseModel):
    """Fixed histogram bins of one continuous metric; out-of-range values go to the end bins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lo: float
    """Lower edge of the first bin (values below it are counted in the first bin)."""
    hi: float
    """Upper edge of the last bin (values above it are counted in the last bin)."""
    bins: Annotated[int, Field(ge=2, le=4096)] = 64
    """Number of bins; the bin width is the resolution of the Hodges–Lehmann shift."""
    scale: BinScale = "linear"
    """``log``: geometric bins (``lo`` > 0), for heavy-tailed metrics such as latency."""

    @model_validator(mode="after")
    def _ordered(self) -> Binning:
        if not self.hi > self.lo:
            raise ValueError(f"binning needs hi > lo, got lo={self.lo}, hi={self.hi}")
        if self.scale == "log" and self.lo <= 0:
            raise ValueError("log binning needs lo > 0")
        return self

    def edges(self) -> list[float]:
        """The ``bins + 1`` edges."""
        if self.scale == "log":
            a, b = math.log(self.lo), math.log(self.hi)
            return [math.exp(a + (b - a) * i / self.bins) for i in range(self.bins + 1)]
        return [self.lo + (self.hi - self.lo) * i / self.bins for i in range(self.bins + 1)]
