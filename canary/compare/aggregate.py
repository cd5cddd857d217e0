"""Per cohort × metric summaries of stored results: one side of a comparison, or a baseline.

An `Aggregate` is, per cohort, the suite versions it ran and per metric the sufficient
statistics of the metric's kind (`canary.stats.kinds`: flag counts, a fixed-bin histogram on the
bins the detector declares, category counts). The numbers are GROUP BYs in the store
(`canary.store.aggregates`); which aggregation fills a metric is its kind's choice, and where it
is read (scores or the results table) is the detector's declaration. Nothing here loads result
rows into Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canary.records import ERROR_RATE, ResultFilter
from canary.stats import DEFAULT_BINNING, MetricPolicy
from canary.stats.kinds import MetricStats, StatTest, stat_test
from canary.store import Store

#: The results table's latency, declared by the `outcome` detector.
LATENCY = "latency_ms"
ALL_COHORTS = "all"
#: Probe kinds whose most common output a detailed aggregate keeps (what healthy answered).
EXPECTED_OUTPUT_KINDS = ("fixed", "topk")

__all__ = ["ALL_COHORTS", "ERROR_RATE", "LATENCY", "Aggregate", "CohortData", "aggregate"]


@dataclass
class CohortData:
    """One cohort of a side: its labels, suites, and the statistics of each metric."""

    labels: dict[str, str]
    suites: dict[str, set[str]] = field(default_factory=dict)
    """Suite name → versions seen (more than one means the suite changed inside the side)."""
    cohort_ids: set[int] = field(default_factory=set)
    metrics: dict[str, MetricStats] = field(default_factory=dict)
    probes: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    """Baselines only: probe → rate metric → [flagged, scored], to see which probes moved."""
    expected: dict[str, str] = field(default_factory=dict)
    """Baselines only: probe → most common output of greedy fixed/topk probes."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "labels": self.labels,
            "suites": {name: sorted(v) for name, v in sorted(self.suites.items())},
            "metrics": {m: d.to_json() for m, d in sorted(self.metrics.items())},
        }
        if self.probes:
            data["probes"] = {p: dict(sorted(m.items())) for p, m in sorted(self.probes.items())}
        if self.expected:
            data["expected"] = dict(sorted(self.expected.items()))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CohortData:
        return cls(
            labels=dict(data["labels"]),
            suites={name: set(v) for name, v in data["suites"].items()},
            metrics={m: MetricStats.from_json(d) for m, d in data["metrics"].items()},
            probes={
                p: {m: list(v) for m, v in ms.items()} for p, ms in data.get("probes", {}).items()
            },
            expected=dict(data.get("expected", {})),
        )


@dataclass
class Aggregate:
    """One side of a comparison, or a baseline."""

    by: tuple[str, ...]
    cohorts: dict[str, CohortData] = field(default_factory=dict)
    description: str = ""
    suites: tuple[str, ...] = ()
    """The suites the side was restricted to (`ResultFilter.suites`); empty: every suite.
    A baseline keeps them: it was captured for those suites and is compared on them only."""
    suite_results: dict[str, int] = field(default_factory=dict)
    """Suite name → results of it on this side: a side holding several mixes suites."""

    @property
    def suite_names(self) -> tuple[str, ...]:
        """The suites this side holds results of, sorted (from its cohorts when the counts
        were not kept: baselines captured before they were)."""
        names = set(self.suite_results) or {s for c in self.cohorts.values() for s in c.suites}
        return tuple(sorted(names))

    @property
    def results(self) -> int:
        """Results covered (every result counts once, in `error_rate`)."""
        counted = [
            c.metrics[ERROR_RATE].n for c in self.cohorts.values() if ERROR_RATE in c.metrics
        ]
        return sum(counted)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": 1,
            "by": list(self.by),
            "description": self.description,
            "cohorts": {key: c.to_json() for key, c in sorted(self.cohorts.items())},
        }
        # Optional keys, so exports of baselines captured before them read back unchanged.
        if self.suites:
            data["suites"] = list(self.suites)
        if self.suite_results:
            data["suite_results"] = dict(sorted(self.suite_results.items()))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Aggregate:
        if data.get("format") != 1:
            from canary.errors import StoreError

            raise StoreError("baseline payload has an unknown format; re-capture it")
        return cls(
            by=tuple(data["by"]),
            description=data.get("description", ""),
            cohorts={k: CohortData.from_json(c) for k, c in data["cohorts"].items()},
            suites=tuple(str(s) for s in data.get("suites", ())),
            suite_results={str(k): int(v) for k, v in data.get("suite_results", {}).items()},
        )


def cohort_key(labels: Mapping[str, str], by: Sequence[str]) -> str:
    """``endpoint=gpu-a,load=c8`` for ``by=("endpoint", "load")``; ``all`` for no grouping."""
    if not by:
        return ALL_COHORTS
    return ",".join(f"{k}={labels.get(k, '')}" for k in by)


def aggregate(
    store: Store,
    filt: ResultFilter,
    by: Sequence[str],
    policies: Mapping[str, MetricPolicy],
    *,
    detail: bool = False,
    rollups: bool = True,
) -> Aggregate:
    """Summarise the results ``filt`` selects, per cohort (``by`` labels) and metric.

    Every metric of ``policies`` is aggregated (and `ERROR_RATE`, which counts the results),
    by its kind's aggregation. With ``detail`` (baselines), also per probe: rate counts, and the
    most common output of greedy fixed/topk probes (what a healthy fleet answered).
    ``rollups`` reads finished runs' rollups where they hold the answer (off: every number
    from the raw rows; the answer is the same).
    """
    from canary.stats.summaries import summary_spec
    from canary.store.aggregates import SCORES, selection
    from canary.store.rollups import rollup_spec

    by = tuple(by)
    out = Aggregate(by=by, description=filt.describe(), suites=tuple(filt.suites))
    plan = _plan(policies)
    with selection(store, filt, rollup_spec(summary_spec()) if rollups else None) as sel:
        key_of: dict[int, str] = {}
        for cohort_id, labels in sel.cohorts:
            key = cohort_key(labels, by)
            key_of[cohort_id] = key
            cohort = out.cohorts.setdefault(key, CohortData({k: labels.get(k, "") for k in by}))
            cohort.cohort_ids.add(cohort_id)
        if not key_of:
            return out
        for cohort_id, suite, version in sel.suite_versions():
            out.cohorts[key_of[cohort_id]].suites.setdefault(suite, set()).add(version)
        out.suite_results = sel.suite_results()
        for (aggregation, _), (test, queries) in plan.items():
            binning = {q.metric: DEFAULT_BINNING.get(q.metric) for q in queries}
            for row in sel.rows(aggregation, queries):
                metrics = out.cohorts[key_of[row.cohort_id]].metrics
                name = row.metric.split("@", 1)[0]
                stats = metrics.get(row.metric)
                if stats is None:
                    stats = metrics[row.metric] = test.empty(binning.get(name))
                test.add(stats, row)
        if detail:
            rates = [
                q.metric
                for test, queries in plan.values()
                if test.counts_flags
                for q in queries
                if q.source == SCORES
            ]
            _probe_detail(sel, out, key_of, rates)
    return out


Plan = dict[tuple[str, str], tuple[StatTest, list[Any]]]


def _plan(policies: Mapping[str, MetricPolicy]) -> Plan:
    """The metrics to aggregate grouped by (aggregation, kind), with what the store needs."""
    from canary.detectors import declared_metrics
    from canary.store.aggregates import SCORES, MetricQuery
    from canary.store.binning import Bins

    declared = declared_metrics()
    wanted = dict(policies)
    if ERROR_RATE not in wanted and ERROR_RATE in declared:
        wanted[ERROR_RATE] = _declared_policy(ERROR_RATE)
    plan: Plan = {}
    for name, policy in wanted.items():
        test = stat_test(policy.kind)
        metric = declared.get(name)
        binning = DEFAULT_BINNING.get(name)
        query = MetricQuery(
            name,
            source=metric.source if metric is not None else SCORES,
            bins=None
            if binning is None
            else Bins(binning.lo, binning.hi, binning.bins, binning.scale),
            category=metric.category if metric is not None else None,
        )
        plan.setdefault((test.aggregation, policy.kind), (test, []))[1].append(query)
    return plan


def _declared_policy(metric: str) -> MetricPolicy:
    from canary.stats import DEFAULT_POLICIES

    return DEFAULT_POLICIES[metric]


def _probe_detail(sel: Any, out: Aggregate, key_of: Mapping[int, str], rates: list[str]) -> None:
    for cohort_id, probe_key, name, k, n in sel.probe_flag_counts(rates):
        counts = out.cohorts[key_of[cohort_id]].probes.setdefault(probe_key, {})
        k_n = counts.setdefault(name, [0, 0])
        k_n[0] += k
        k_n[1] += n
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for cohort_id, probe_key, text, n in sel.output_counts(EXPECTED_OUTPUT_KINDS):
        slot = (key_of[cohort_id], probe_key)
        if slot not in best or n > best[slot][0]:
            best[slot] = (n, text)
    for (key, probe_key), (_, text) in best.items():
        out.cohorts[key].expected[probe_key] = text
