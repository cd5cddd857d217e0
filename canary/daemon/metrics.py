"""Prometheus metrics of the daemon: counters it bumps as it works, gauges read from the store.

The counters live in this process. The gauges (monitor evidence, alerts, outbox) describe the
shared database, so any daemon of a fleet exports the same values; they are read on
`refresh_from_store` and swapped in whole, so a scrape never sees half a refresh.

Prometheus label names are fixed: cohort labels other than endpoint, pool and load are dropped
from the gauges. Monitors that then share a series are merged (the largest evidence, the pooled
flag rate); alerts are counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from canary.store.daemon_state import MonitorState
    from canary.store.repository import Store

#: The cohort labels the gauges keep, in this order after `metric`.
COHORT_LABELS = ("endpoint", "pool", "load")
_MONITOR_LABELS = ("metric", *COHORT_LABELS)
_ALERT_LABELS = ("status", *_MONITOR_LABELS)

Key = tuple[str, ...]


@dataclass(frozen=True)
class StoreSnapshot:
    """The gauge values of one `refresh_from_store`."""

    score: dict[Key, float] = field(default_factory=dict)
    rate: dict[Key, float] = field(default_factory=dict)
    alerts: dict[Key, int] = field(default_factory=dict)
    outbox_pending: int = 0


class DaemonMetrics:
    """The daemon's metrics, in a registry of their own (never the process-global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.probes = Counter(
            "canary_probes",
            "Probe requests sent, by endpoint, load shape and outcome (ok or error).",
            ["endpoint", "load", "outcome"],
            registry=self.registry,
        )
        self.rounds = Counter(
            "canary_rounds",
            "Rounds finished, by schedule, load shape and run status.",
            ["schedule", "load", "status"],
            registry=self.registry,
        )
        self.slots = Counter(
            "canary_slots",
            "Schedule slots by outcome: done, failed, aborted, skipped (another daemon ran it)"
            " or missed (its time passed while no daemon was up, and it was not caught up).",
            ["schedule", "status"],
            registry=self.registry,
        )
        self.changes_recorded = Counter(
            "canary_changes_recorded",
            "Changes newly recorded, by source (http, dropdir); identical retries not counted.",
            ["source"],
            registry=self.registry,
        )
        self._gauges = _StoreCollector()
        self.registry.register(self._gauges)

    def round_finished(
        self,
        schedule: str,
        load: str,
        status: str,
        endpoints: Mapping[str, tuple[int, int]],
    ) -> None:
        """Count a finished round and its probes; `endpoints` maps endpoint → (sent, errors)."""
        for endpoint, (sent, errors) in endpoints.items():
            if not 0 <= errors <= sent:
                raise ValueError(f"endpoint {endpoint!r}: {errors} errors of {sent} sent")
        self.rounds.labels(schedule, load, status).inc()
        for endpoint, (sent, errors) in endpoints.items():
            self.probes.labels(endpoint, load, "ok").inc(sent - errors)
            self.probes.labels(endpoint, load, "error").inc(errors)

    def slot_finished(self, schedule: str, status: str, count: int = 1) -> None:
        """Count `count` slots of `schedule` that ended as `status`."""
        if count > 0:
            self.slots.labels(schedule, status).inc(count)

    def change_recorded(self, source: str) -> None:
        """Count one newly recorded change."""
        self.changes_recorded.labels(source).inc()

    def refresh_from_store(self, store: Store) -> None:
        """Re-read monitors, open alerts and pending deliveries into the gauges."""
        self._gauges.snapshot = read_snapshot(store)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


def read_snapshot(store: Store) -> StoreSnapshot:
    """The gauge values as the store has them now (one read transaction)."""
    from canary.store.alert_values import OPEN_ALERT_STATUSES
    from canary.store.daemon_state import read_gauges

    reading = read_gauges(store, open_statuses=OPEN_ALERT_STATUSES)
    score, rate = _monitor_gauges(reading.monitors)
    alerts: dict[Key, int] = defaultdict(int)
    for alert in reading.open_alerts:
        alerts[(alert.status, *_key(alert.metric, alert.labels))] += 1
    return StoreSnapshot(score, rate, dict(alerts), reading.outbox_pending)


def _monitor_gauges(rows: Iterable[MonitorState]) -> tuple[dict[Key, float], dict[Key, float]]:
    score: dict[Key, float] = {}
    flagged: dict[Key, float] = defaultdict(float)
    total: dict[Key, float] = defaultdict(float)
    for row in rows:
        key = _key(row.metric, row.labels)
        state = row.state if isinstance(row.state, dict) else {}
        value = _number(state.get("score"))
        score[key] = max(score.get(key, 0.0), value if value is not None else 0.0)
        k, n = _number(state.get("last_k")), _number(state.get("last_n"))
        if k is not None and n:
            flagged[key] += k
            total[key] += n
    rate = {key: flagged[key] / n for key, n in total.items()}
    return score, rate


def _key(metric: str, labels: Mapping[str, str] | None) -> Key:
    labels = labels or {}
    return (metric, *(str(labels.get(name, "")) for name in COHORT_LABELS))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class _StoreCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = StoreSnapshot()

    def describe(self) -> Iterable[Any]:
        return list(self._families(StoreSnapshot()))

    def collect(self) -> Iterable[Any]:
        return list(self._families(self.snapshot))

    @staticmethod
    def _families(snap: StoreSnapshot) -> Iterator[GaugeMetricFamily]:
        yield _family(
            "canary_monitor_score",
            "Evidence (nats) of each monitor's sequential test against its baseline.",
            _MONITOR_LABELS,
            snap.score,
        )
        yield _family(
            "canary_monitor_rate",
            "Flagged share of the monitor's probes in its last round.",
            _MONITOR_LABELS,
            snap.rate,
        )
        yield _family(
            "canary_alerts",
            "Open alerts (pending or firing), by status and cohort.",
            _ALERT_LABELS,
            snap.alerts,
        )
        yield GaugeMetricFamily(
            "canary_outbox_pending",
            "Notification deliveries waiting to be sent (or retried) to a sink.",
            value=snap.outbox_pending,
        )


def _family(
    name: str, documentation: str, labels: Sequence[str], values: Mapping[Key, float]
) -> GaugeMetricFamily:
    """One gauge family with a sample per label-value key, in a stable order."""
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for key, value in sorted(values.items()):
        family.add_metric(key, value)
    return family
