"""The cohort × rate-metric grid: one status per cell, and the rule that decides it.

Two judges look at a cell, and the report shows which one spoke:

- the daemon, live: its alerts and its monitors (a CUSUM per cohort × metric, calibrated to a
  false-alarm budget, fed every round);
- the gate, retrospective: the window against a reference (a stored baseline, else the
  window of the same length just before), tested like `canary compare` does: Fisher's exact
  test per cell, Benjamini–Hochberg across the whole grid as one family, and the margin.

Rule, first match wins:

1. ``regressed``: an open firing alert on the cell (the daemon paged for it);
2. ``no data``: no result in the window;
3. ``regressed``: the gate's verdict is ``regression`` (significant after FDR, beyond margin);
4. ``inconclusive``: a pending alert or monitor (evidence at half the firing threshold);
5. ``ok``: a monitor updated inside the window says ok (its sequential test saw the rounds);
6. ``ok``: the gate passes (the data rules out a margin-sized regression) or improves;
7. ``inconclusive``: otherwise: too little data, or no reference and no monitor.

A monitor's "ok" outranks the gate's "inconclusive" because a window holds few rounds and a
rare-event margin needs thousands of samples to *prove* clean, while the monitor has carried its
evidence across every round since it started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from canary.compare.aggregate import ERROR_RATE, Aggregate, CohortData, aggregate, cohort_key
from canary.compare.gate import NotComparable, cohort_tests
from canary.errors import NotFoundError
from canary.records import ResultFilter
from canary.reports.model import Cell, CellStatus, Cohort
from canary.reports.queries import run_series
from canary.stats import MetricPolicy, MetricVerdict, TestResult, evaluate
from canary.stats.kinds import stat_test
from canary.store import Store
from canary.store.alert_values import OPEN_ALERT_STATUSES, Alert
from canary.store.reports import MonitorView, live_monitors

#: The rows unless `--by` says otherwise: what the daemon monitors per (an endpoint under a
#: load shape), whatever grouping the reference baseline was captured with.
DEFAULT_BY = ("endpoint", "load")
_MONITOR_RANK = {"firing": 2, "pending": 1, "ok": 0}


@dataclass(frozen=True)
class Grid:
    by: tuple[str, ...]
    reference: str
    metrics: list[str]
    cohorts: list[Cohort]
    cells: list[Cell]
    window: Aggregate
    notes: list[str]


def build_grid(
    store: Store,
    *,
    since: datetime,
    until: datetime,
    selection: Mapping[str, str],
    alerts: Sequence[Alert],
    policies: Mapping[str, MetricPolicy],
    baseline: str | None = None,
    alpha: float = 0.05,
    by: Sequence[str] = DEFAULT_BY,
    suites: Sequence[str] = (),
) -> Grid:
    """Test every cohort × rate metric of the window, grouped by ``by`` and restricted to
    ``suites``, and decide its status (module rule)."""
    rates = flag_metrics(policies)
    notes: list[str] = []
    by, suites = tuple(by), tuple(suites)
    window_filter = ResultFilter(labels=dict(selection), since=since, until=until, suites=suites)
    reference, ref_text = _reference(store, baseline, alerts, window_filter, by, rates, notes)
    window = aggregate(store, window_filter, by, rates)
    open_alerts = [a for a in alerts if a.status in OPEN_ALERT_STATUSES]
    cohorts = {k: c for k, c in window.cohorts.items() if _results(c) > 0}
    for a in open_alerts:
        key = cohort_key(a.labels, by)
        cohorts.setdefault(key, CohortData({k: a.labels.get(k, "") for k in by}))
    metrics = [
        m
        for m in rates
        if any(m in c.metrics and c.metrics[m].n for c in cohorts.values())
        or any(a.metric == m for a in open_alerts)
    ]
    refs = {key: reference_cohort(reference, c, by) for key, c in cohorts.items()}
    if cohorts and not set(reference.by) <= set(by):
        notes.append(
            f"{ref_text} is grouped by {','.join(reference.by)}, which rows by {','.join(by)} "
            f"do not determine: no gate verdicts; pass --by {','.join(reference.by)}"
        )
    verdicts = _verdicts(refs, cohorts, rates, alpha, notes)
    monitors = live_monitors(store, ResultFilter(labels=dict(selection), since=since))
    key_of = {cid: key for key, c in cohorts.items() for cid in c.cohort_ids}
    series = run_series(
        store, key_of, metrics, ResultFilter(since=since, until=until, suites=suites)
    )
    cells = []
    for key in sorted(cohorts):
        for metric in metrics:
            k, n = _counts(cohorts[key], metric) or (0, 0)
            ref = refs.get(key)
            ref_k, ref_n = (_counts(ref, metric) if ref else None) or (0, 0)
            base = ref_k / ref_n if ref_n else None
            rate = k / n if n else None
            cell_alerts = [
                a for a in open_alerts if a.metric == metric and cohort_key(a.labels, by) == key
            ]
            mons = [m for m in monitors if m.metric == metric and cohort_key(m.labels, by) == key]
            verdict = verdicts.get((key, metric))
            monitor = _worst(mons)
            status, reason = decide(n, cell_alerts, verdict, monitor, rates[metric])
            cells.append(
                Cell(
                    cohort=key,
                    metric=metric,
                    status=status,
                    reason=reason,
                    k=k,
                    n=n,
                    rate=rate,
                    baseline_rate=base,
                    effect=rate - base if rate is not None and base is not None else None,
                    verdict=verdict.verdict if verdict else None,
                    q_value=verdict.q_value if verdict else None,
                    monitor=monitor.status if monitor else None,
                    alert_ids=[a.id for a in cell_alerts],
                    trend=series.get((key, metric), []),
                )
            )
    rows = [Cohort(key, dict(cohorts[key].labels)) for key in sorted(cohorts)]
    return Grid(by, ref_text, metrics, rows, cells, window, notes)


def decide(
    n: int,
    alerts: Sequence[Alert],
    verdict: MetricVerdict | None,
    monitor: MonitorView | None,
    policy: MetricPolicy,
) -> tuple[CellStatus, str]:
    """A cell's status and the reason shown for it (the rule in the module docstring)."""
    firing = [a for a in alerts if a.status == "firing"]
    if firing:
        ids = ", ".join(f"#{a.id}" for a in firing)
        return "regressed", f"alert {ids} firing ({firing[0].rate:.1%} since onset)"
    if n == 0:
        return "no data", "no results in the window"
    if verdict is not None and verdict.verdict == "regression":
        r = verdict.result
        return "regressed", f"gate: {r.effect:+.2%} vs reference, q={verdict.q_value:.2g}"
    if alerts or (monitor is not None and monitor.status == "pending"):
        return "inconclusive", "alert pending" + _nats(monitor)
    if monitor is not None and monitor.status == "ok":
        return "ok", "daemon monitor ok" + _nats(monitor)
    if verdict is not None and verdict.verdict in ("pass", "improvement"):
        return "ok", f"gate: {verdict.verdict} (rules out +{policy.margin:g})"
    if verdict is not None and verdict.verdict == "inconclusive":
        mde = verdict.result.mde
        return "inconclusive", f"gate: cannot rule out +{policy.margin:g} (detectable +{mde:.2g})"
    return "inconclusive", "no reference data and no live monitor"


def _nats(monitor: MonitorView | None) -> str:
    if monitor is None or monitor.threshold is None:
        return ""
    return f": evidence {monitor.score:.1f} of {monitor.threshold:.1f} nats"


def _worst(monitors: Sequence[MonitorView]) -> MonitorView | None:
    """The monitor closest to firing among a row's monitors (several loads in one row)."""
    if not monitors:
        return None
    return max(
        monitors,
        key=lambda m: (_MONITOR_RANK.get(m.status, 0), m.score / (m.threshold or 1.0)),
    )


def reference_cohort(reference: Aggregate, row: CohortData, by: Sequence[str]) -> CohortData | None:
    """The reference of a row: the reference cohort its labels fall in. A baseline grouped more
    coarsely than the rows (by endpoint, rows by endpoint and load) is every finer row's
    reference, as it is for the alert monitors; one grouped by a label the rows do not carry
    cannot say which of its cohorts a row belongs to."""
    if not set(reference.by) <= set(by):
        return None
    return reference.cohorts.get(cohort_key(row.labels, reference.by))


def flag_metrics(policies: Mapping[str, MetricPolicy]) -> dict[str, MetricPolicy]:
    """The metrics whose kind counts flags: the grid's columns (and the pools' tests)."""
    return {m: p for m, p in policies.items() if stat_test(p.kind).counts_flags}


def _counts(cohort: CohortData, metric: str) -> tuple[int, int] | None:
    data = cohort.metrics.get(metric)
    return data.flag_counts() if data is not None else None


def _results(cohort: CohortData) -> int:
    data = cohort.metrics.get(ERROR_RATE)
    return data.n if data else 0


def _verdicts(
    refs: Mapping[str, CohortData | None],
    cohorts: Mapping[str, CohortData],
    policies: Mapping[str, MetricPolicy],
    alpha: float,
    notes: list[str],
) -> dict[tuple[str, str], MetricVerdict]:
    """Each cohort tested alone (so one incomparable cohort costs only itself), then every
    test of the grid adjusted as one FDR family."""
    results: list[TestResult] = []
    names: list[str] = []
    for key, cohort in sorted(cohorts.items()):
        ref = refs.get(key)
        if ref is None or not cohort.metrics:
            continue
        try:
            tested, _ = cohort_tests(key, ref, cohort, policies)
        except NotComparable as exc:
            notes.append(f"{key}: not tested against the reference: {exc}")
            continue
        results += tested
        names += [key] * len(tested)
    verdicts = evaluate(results, cohorts=names, policies=dict(policies), alpha=alpha)
    return {(v.cohort, v.metric): v for v in verdicts}


def _reference(
    store: Store,
    baseline: str | None,
    alerts: Sequence[Alert],
    window: ResultFilter,
    by: tuple[str, ...],
    policies: Mapping[str, MetricPolicy],
    notes: list[str],
) -> tuple[Aggregate, str]:
    """The reference: ``baseline``; else the one the newest alert fired against; else the
    newest stored baseline; else the earlier window of the same length. With suites named, a
    baseline of other suites is refused when asked for, passed over otherwise."""
    from canary.compare.baselines import load_baseline
    from canary.compare.suites import baseline_scope
    from canary.store.baselines import baseline_names

    if baseline is not None:
        found = load_baseline(store, baseline)
        if window.suites:
            baseline_scope(found.name, found.aggregate, window.suites)
        return found.aggregate, f"baseline {found.name}"
    named = [str(a.detail["baseline"]) for a in alerts if a.detail.get("baseline")]
    for name in [*named, *reversed(baseline_names(store))]:
        try:
            found = load_baseline(store, name)
        except NotFoundError:
            notes.append(f"alerts name baseline {name!r}, which is no longer stored")
            continue
        own = found.aggregate.suites or found.aggregate.suite_names
        if window.suites and set(own) != set(window.suites):
            notes.append(f"baseline {name!r} is of suite {','.join(own)}: not the reference")
            continue
        return found.aggregate, f"baseline {found.name}"
    assert window.since is not None and window.until is not None
    span = window.until - window.since
    earlier = replace(window, since=window.since - span, until=window.since)
    text = f"earlier window {earlier.describe()}"
    return aggregate(store, earlier, by, policies), text
