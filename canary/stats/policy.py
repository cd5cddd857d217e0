"""Per-metric test policy: which test, which direction is worse, and what difference matters.

A policy is config (strict pydantic, one docstring per field). The margin is the smallest
difference that is a regression in practice: honest bf16 noise moves every metric a little, and a
test on millions of probes finds that "significant". Only a difference beyond the margin counts.

Continuous metrics are compared as histograms on fixed per-metric bin edges (`histogram_edges`),
so a baseline captured months ago and today's data share edges without either side re-binning.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["higher_is_worse", "lower_is_worse", "two_sided"]
"""Which change is worse. ``two_sided`` (continuous only): a shift either way beyond the margin
is a regression, and there is no improvement (entropy and compressibility move both ways under
different faults: corruption raises them, degenerate repetition lowers them)."""

MetricKind = Literal["rate", "continuous", "distribution"]

BinScale = Literal["linear", "log"]


class MetricPolicy(BaseModel):
    """How one metric is tested and what size of change is a regression."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    """The stored metric name (a detector's score name)."""
    kind: MetricKind
    """``rate``: flagged/total counts; ``continuous``: histograms; ``distribution``: category
    counts."""
    direction: Direction = "higher_is_worse"
    """Which change is worse; ``two_sided`` only for continuous metrics; distributions ignore it
    (any change of the category mix is worse)."""
    margin: Annotated[float, Field(ge=0)]
    """Practical-significance margin in the metric's units: an absolute rate difference for
    rates, a Hodges–Lehmann shift for continuous metrics, Cohen's w (allocation-free) for
    distributions."""
    critical: bool = False
    """A critical metric that cannot be shown clean (inconclusive) makes the whole gate
    inconclusive; a regression of any metric fails the gate."""

    @model_validator(mode="after")
    def _two_sided_only_continuous(self) -> MetricPolicy:
        if self.direction == "two_sided" and self.kind != "continuous":
            raise ValueError(
                f"metric {self.metric!r}: direction 'two_sided' is only supported for continuous "
                "metrics; use 'higher_is_worse' or 'lower_is_worse'"
            )
        return self


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


def _rate(metric: str, margin: float, critical: bool = False) -> MetricPolicy:
    return MetricPolicy(metric=metric, kind="rate", margin=margin, critical=critical)


def _cont(metric: str, margin: float, direction: Direction = "higher_is_worse") -> MetricPolicy:
    return MetricPolicy(metric=metric, kind="continuous", margin=margin, direction=direction)


DEFAULT_POLICIES: dict[str, MetricPolicy] = {
    p.metric: p
    for p in [
        _rate("unexpected_script", 0.001, critical=True),
        _rate("mojibake", 0.002),
        _rate("code_parse_error", 0.01, critical=True),
        _rate("fixed_fail", 0.02),
        _rate("degenerate", 0.005),
        _rate("first_divergence", 0.005, critical=True),
        _rate("greedy_not_argmax", 0.001, critical=True),
        _rate("majority_mismatch", 0.01),
        _rate("first_token_out_of_support", 0.001, critical=True),
        _rate("error_rate", 0.01),
        _cont("char_entropy", 0.1, "two_sided"),
        _cont("compression_ratio", 0.02, "two_sided"),
        _cont("top1_agreement", 0.02, "lower_is_worse"),
        _cont("mean_logprob_gap", 0.05),
        _cont("mean_shared_kl", 0.02),
        _cont("latency_ms", 50.0),
        MetricPolicy(metric="sampling_first_token", kind="distribution", margin=0.05),
    ]
}
"""Policies for canary's own metrics; config may override any of them."""

DEFAULT_BINNING: dict[str, Binning] = {
    "char_entropy": Binning(lo=0.0, hi=8.0, bins=160),
    "compression_ratio": Binning(lo=0.0, hi=1.5, bins=150),
    "top1_agreement": Binning(lo=0.0, hi=1.0, bins=100),
    "mean_logprob_gap": Binning(lo=0.0, hi=10.0, bins=200),
    "mean_shared_kl": Binning(lo=0.0, hi=4.0, bins=200),
    "latency_ms": Binning(lo=1.0, hi=300_000.0, bins=256, scale="log"),
}
"""Fixed per-metric bins; never change an entry in place (stored baselines use its edges)."""


def policy_for(
    metric: str,
    policies: dict[str, MetricPolicy] | None = None,
    *,
    scale: float | None = None,
) -> MetricPolicy:
    """The policy of ``metric``, from ``policies`` (default `DEFAULT_POLICIES`).

    Fallback for an unknown metric: continuous, ``two_sided`` (no direction is known), with a
    margin of 0.1 × ``scale`` (pass a robust spread of the baseline such as its IQR), or 0 when no
    scale is given — a zero margin means any significant shift is a regression, so give a scale.
    """
    table = DEFAULT_POLICIES if policies is None else policies
    if metric in table:
        return table[metric]
    margin = 0.1 * abs(scale) if scale is not None and math.isfinite(scale) else 0.0
    return MetricPolicy(metric=metric, kind="continuous", direction="two_sided", margin=margin)


def histogram_edges(
    metric: str,
    lo: float | None = None,
    hi: float | None = None,
    bins: int = 64,
    scale: BinScale = "linear",
) -> list[float]:
    """Bin edges for ``metric``: its `DEFAULT_BINNING` entry, else ``bins`` bins on [lo, hi]."""
    if metric in DEFAULT_BINNING and lo is None and hi is None:
        return DEFAULT_BINNING[metric].edges()
    if lo is None or hi is None:
        raise ValueError(f"metric {metric!r} has no default binning; pass lo and hi")
    return Binning(lo=lo, hi=hi, bins=bins, scale=scale).edges()


def histogram_counts(edges: ArrayLike, values: ArrayLike) -> list[int]:
    """Counts of ``values`` in the bins of ``edges`` (right-open; out-of-range clamped to the
    end bins; NaN dropped) — the same rule the SQL aggregation must follow: in PostgreSQL
    ``least(greatest(width_bucket(x, lo, hi, bins), 1), bins) - 1`` (on ``ln x``, ``ln lo``,
    ``ln hi`` for log bins)."""
    import numpy as np

    e = np.asarray(edges, dtype=float)
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    idx = np.clip(np.searchsorted(e, v, side="right") - 1, 0, len(e) - 2)
    return [int(c) for c in np.bincount(idx, minlength=len(e) - 1)]
