"""What the rollups keep per metric, read from what the detectors declare about their metrics.

The store keeps flag counts of every metric; histogram bins and distribution categories depend
on the metric, so the spec names them: the bins a continuous metric declares (score values, or
the results table's latency) and the evidence key of a distribution metric's category. The same
declarations build the queries of `canary.compare.aggregate`, so a rollup answers exactly the
question compare asks. Plain values: the store turns them into its `RollupSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: (lo, hi, bins, scale) of a fixed binning.
BinsSpec = tuple[float, float, int, str]


@dataclass(frozen=True)
class SummarySpec:
    """Which metrics get which bins, and which evidence key is each distribution's category."""

    bins: dict[str, BinsSpec] = field(default_factory=dict)
    """Score metric → its fixed bins (continuous metrics)."""
    latency: dict[str, BinsSpec] = field(default_factory=dict)
    """Results-table latency metric → its bins."""
    categories: dict[str, str] = field(default_factory=dict)
    """Distribution metric → the evidence key holding its category."""


def summary_spec() -> SummarySpec:
    """The spec of today's declared metrics (a new detector version with new bins changes it,
    and the rollups built before are no longer used)."""
    from canary.detectors import declared_metrics
    from canary.detectors.metrics import RESULT_LATENCY, SCORES
    from canary.stats.kinds import stat_test
    from canary.stats.policy import DEFAULT_BINNING, DEFAULT_POLICIES

    spec = SummarySpec()
    for name, metric in declared_metrics().items():
        policy = DEFAULT_POLICIES.get(name)
        aggregation = stat_test(policy.kind).aggregation if policy is not None else None
        binning = DEFAULT_BINNING.get(name)
        if aggregation == "bins" and binning is not None:
            bins = (binning.lo, binning.hi, binning.bins, binning.scale)
            if metric.source == RESULT_LATENCY:
                spec.latency[name] = bins
            elif metric.source == SCORES:
                spec.bins[name] = bins
        if aggregation == "categories" and metric.category is not None:
            spec.categories[name] = metric.category
    return spec
