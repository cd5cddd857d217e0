"""What a detector declares about each metric it stores: how it is tested, binned and explained.

A detector lists its metrics in ``metrics`` (a tuple of `Metric`); compare, baselines, alerts and
reports read that declaration from the registry, so a plugin's metric is tested, monitored and
shown like a built-in with no table to edit elsewhere. Policies and bins here are plain values:
`canary.stats` validates them into its `MetricPolicy` and `Binning` on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from canary.records import TokenLogprob

Direction = Literal["higher_is_worse", "lower_is_worse", "two_sided"]

SCORES = "score"
"""Source of a metric read from the detector's stored scores (the default)."""
RESULT_ERRORS = "result.error"
"""Source of a rate read from the results table: results whose request failed."""
RESULT_LATENCY = "result.latency_ms"
"""Source of a continuous metric read from the results table: the latency of answered results."""


@dataclass(frozen=True)
class Bins:
    """Fixed histogram bins of a continuous metric; never change them in place (stored baselines
    keep the edges they were captured with)."""

    lo: float
    hi: float
    bins: int = 64
    scale: Literal["linear", "log"] = "linear"


class Span(NamedTuple):
    """The offending part of an output: ``text[start:end]``, what it is, a note for people."""

    start: int
    end: int
    kind: str
    note: str


@dataclass(frozen=True)
class EvidenceView:
    """What an explanation sees of one stored result."""

    text: str
    """The output shown (or, for a pruned output, the context its evidence kept)."""
    evidence: Mapping[str, Any] | None
    """The metric's stored evidence."""
    located: Mapping[str, Any] | None
    """The evidence when its offsets index ``text`` (None when ``text`` is a kept context)."""
    tokens: Sequence[TokenLogprob] | None = None
    prompt: str | None = None
    error_kind: str | None = None
    error_detail: str | None = None


@dataclass(frozen=True)
class Explanation:
    """How reports show a metric's evidence; every part is optional."""

    spans: Callable[[EvidenceView], list[Span]] | None = None
    """Where in the output the problem is."""
    detail: Callable[[EvidenceView], dict[str, Any]] | None = None
    """The facts shown next to the output."""
    lines: Callable[[Mapping[str, Any]], list[str]] | None = None
    """The facts as sentences (default: one ``key: value`` line each)."""
    severity: Callable[[Mapping[str, Any]], float] | None = None
    """How bad one output is, from its evidence, to show the worst first (default: its value)."""


@dataclass(frozen=True)
class Metric:
    """One metric a detector stores, with the policy and bins it is tested with."""

    name: str
    """The stored metric name."""
    kind: str
    """A metric kind registered in `canary.stats.kinds.stat_tests` (rate, continuous, …)."""
    margin: float
    """The smallest change that is a regression (see `canary.stats.MetricPolicy.margin`)."""
    direction: Direction = "higher_is_worse"
    critical: bool = False
    """An unresolved critical metric makes the gate inconclusive."""
    binning: Bins | None = None
    """Continuous metrics: the fixed bins they are aggregated on (none: not aggregated)."""
    source: str = SCORES
    """Where the store reads it: `SCORES`, `RESULT_ERRORS` or `RESULT_LATENCY`."""
    category: str | None = None
    """Distributions: the evidence key that holds each score's category; tested per probe, as
    ``name@probe``."""
    explain: Explanation = field(default_factory=Explanation)
    relative_margin: float = 0.0
    """The margin relative to the before value (see `canary.stats.MetricPolicy.relative_margin`)."""
    reason: str = ""
    """Why the margin is what it is: the harm it stands for, or what the probe budget can
    rule out."""


def rate(name: str, margin: float, *, critical: bool = False, **kw: Any) -> Metric:
    """A flagged/total metric: higher is worse."""
    return Metric(name, "rate", margin, critical=critical, **kw)


def continuous(
    name: str, margin: float, bins: Bins, direction: Direction = "higher_is_worse", **kw: Any
) -> Metric:
    """A value metric compared as a histogram on ``bins``."""
    return Metric(name, "continuous", margin, direction=direction, binning=bins, **kw)
