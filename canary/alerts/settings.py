"""Alert settings: which metrics are monitored, against which baseline, with what error budget.

The false-alarm budget is stated the way on-call thinks about it, false alerts per year for the
whole fleet, and turned into each monitor's CUSUM threshold from the number of monitors and
rounds a year (see `canary.stats.cusum`). A detection therefore needs more evidence in a large
fleet probed often than in a small one: that is the price of not paging people for noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

from canary.alerts.lifecycle import Rules
from canary.compare.aggregate import Aggregate, cohort_key
from canary.stats import DEFAULT_POLICIES, MetricPolicy
from canary.stats.cusum import CusumRateDetector, arl_for_false_alarms
from canary.stats.kinds import RateCounts, stat_test
from canary.stats.sequential import baseline_upper_rate
from canary.timespec import parse_duration

if TYPE_CHECKING:
    from canary.store import Store


class AlertsConfig(BaseModel):
    """The `alerts:` block of a daemon config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline: str
    """Name of the stored baseline (`canary baseline capture|import`) that defines healthy."""
    metrics: list[str] | None = None
    """Rate metrics to monitor; default every rate metric canary's detectors produce."""
    margins: dict[str, Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=dict)
    """Per-metric overrides of the smallest rate increase worth an alert."""
    false_alarms_per_year: Annotated[float, Field(gt=0)] = 1.0
    """False alerts the whole fleet may raise in a year; sets every monitor's threshold."""
    baseline_confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    """The baseline rate used is its one-sided upper confidence bound at this level."""
    resolve_nats: Annotated[float, Field(gt=0)] | None = None
    """Evidence (log likelihood ratio) that the rate is back at baseline before an alert
    resolves. Default: half the monitor's firing threshold, so a fault still running resolves
    by chance no more often than a healthy cohort goes pending (with a fixed 3 nats, a 0.8%
    misrouting resolved and fired again within hours in the replay)."""
    resolve_min_rounds: Annotated[int, Field(ge=1)] = 2
    """Rounds an alert stays firing at least, however clean the data."""
    attribution_window: str = "24h"
    """How far back from an alert's onset a recorded change may be blamed."""
    evidence_limit: Annotated[int, Field(ge=1, le=500)] = 20
    """Flagged outputs kept as an alert's evidence (retention never prunes them)."""


@dataclass(frozen=True)
class AlertSettings:
    """`AlertsConfig` resolved against the database: the baseline loaded, the ARL computed."""

    baseline_name: str
    baseline: Aggregate
    policies: Mapping[str, MetricPolicy]
    """Monitored rate metrics and their margins."""
    arl_rounds: float
    """Average rounds between false alarms of one monitor."""
    resolve_nats: float | None
    resolve_min_rounds: int
    attribution_window: timedelta
    evidence_limit: int
    confidence: float
    sink_names: tuple[str, ...] = ()

    def detector_for(self, labels: Mapping[str, str], metric: str) -> CusumRateDetector | None:
        """A fresh detector for a cohort × metric, or None when the baseline cannot say."""
        k_n = self.baseline_counts(labels, metric)
        if k_n is None:
            return None
        p0 = max(baseline_upper_rate(*k_n, confidence=self.confidence), 1e-6)
        margin = self.policies[metric].margin
        if p0 + margin >= 1:
            return None
        return CusumRateDetector.for_arl(p0, margin, self.arl_rounds)

    def rules_for(self, metric: str) -> Rules:
        """What the lifecycle of a monitor of ``metric`` needs of these settings."""
        return Rules(
            margin=self.policies[metric].margin,
            resolve_nats=self.resolve_nats,
            resolve_min_rounds=self.resolve_min_rounds,
            evidence_limit=self.evidence_limit,
        )

    def baseline_counts(self, labels: Mapping[str, str], metric: str) -> tuple[int, int] | None:
        """(flagged, total) sessions of the matching baseline cohort, else of the whole
        baseline; results for baselines captured before session counts were kept."""
        cohort = self.baseline.cohorts.get(cohort_key(labels, self.baseline.by))
        own = cohort.metrics.get(metric) if cohort is not None else None
        if isinstance(own, RateCounts) and own.n > 0:
            return own.units()
        k = n = 0
        for other in self.baseline.cohorts.values():
            data = other.metrics.get(metric)
            if isinstance(data, RateCounts):
                dk, dn = data.units()
                k, n = k + dk, n + dn
        return (k, n) if n else None


def monitored_policies(config: AlertsConfig) -> dict[str, MetricPolicy]:
    """The rate metrics to monitor with their (possibly overridden) margins."""
    from canary.errors import ConfigError

    # Every declared metric whose kind counts flags, plugins' included (CUSUM monitors counts).
    rates = {m: p for m, p in DEFAULT_POLICIES.items() if stat_test(p.kind).counts_flags}
    names = config.metrics if config.metrics is not None else list(rates)
    out: dict[str, MetricPolicy] = {}
    for name in names:
        if name not in rates:
            known = ", ".join(sorted(rates))
            raise ConfigError(f"alerts.metrics: {name!r} is not a rate metric (known: {known})")
        policy = rates[name]
        if name in config.margins:
            policy = policy.model_copy(update={"margin": config.margins[name]})
        out[name] = policy
    for name in config.margins:
        if name not in out:
            raise ConfigError(f"alerts.margins: {name!r} is not a monitored metric")
    return out


def resolve_settings(
    store: Store,
    config: AlertsConfig,
    *,
    monitors: int,
    rounds_per_year: float,
    sink_names: tuple[str, ...] = (),
) -> AlertSettings:
    """Load the baseline and size the thresholds for ``monitors`` cohort × metric monitors."""
    from canary.compare.baselines import load_baseline

    baseline = load_baseline(store, config.baseline)
    policies = monitored_policies(config)
    arl = arl_for_false_alarms(config.false_alarms_per_year, rounds_per_year, max(monitors, 1))
    return AlertSettings(
        baseline_name=baseline.name,
        baseline=baseline.aggregate,
        policies=policies,
        arl_rounds=arl,
        resolve_nats=config.resolve_nats,
        resolve_min_rounds=config.resolve_min_rounds,
        attribution_window=parse_duration(config.attribution_window),
        evidence_limit=config.evidence_limit,
        confidence=config.baseline_confidence,
        sink_names=sink_names,
    )


__all__ = [
    "AlertSettings",
    "AlertsConfig",
    "monitored_policies",
    "resolve_settings",
]
