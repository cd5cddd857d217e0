"""`build_report`: the store, a window and a label selection in; one `Report` value out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from canary.compare.aggregate import ERROR_RATE, cohort_key
from canary.compare.served import served_models
from canary.compare.suites import check_known
from canary.errors import ConfigError
from canary.records import ResultFilter
from canary.reports.evidence import collect_evidence
from canary.reports.grid import DEFAULT_BY, Grid, build_grid
from canary.reports.model import AlertGroup, ImpactRow, Report
from canary.reports.pools import POOL_LABELS, compare_pools
from canary.stats import DEFAULT_POLICIES, MetricPolicy
from canary.store import Store
from canary.store.alert_values import Alert
from canary.store.changes import Change, get_change, list_changes

DEFAULT_WINDOW = timedelta(hours=24)


def build_report(
    store: Store,
    window: ResultFilter | None = None,
    *,
    baseline: str | None = None,
    policies: Mapping[str, MetricPolicy] | None = None,
    alpha: float = 0.05,
    pool_labels: Sequence[str] = POOL_LABELS,
    samples_per_cell: int = 3,
    by: Sequence[str] | None = None,
) -> Report:
    """The on-call report of the window's [since, until) (default: the 24 hours up to now)
    for the cohorts carrying every label of ``window`` and the results of its suites (default
    all), one row per ``by`` cohort (default `DEFAULT_BY`, never the baseline's grouping),
    tested against ``baseline`` (default: see `canary.reports.grid`)."""
    generated = datetime.now(UTC)
    window = window or ResultFilter()
    if window.run_ids:
        raise ConfigError("a report covers a time window, not runs; give --since instead")
    until = window.until or generated
    since = window.since or until - DEFAULT_WINDOW
    if since >= until:
        raise ConfigError(
            f"report window starts at {since.isoformat()}, after its end; "
            "give --since a time in the past, e.g. 24h"
        )
    selection = dict(window.labels)
    suites = tuple(window.suites)
    check_known(store, suites)
    window = ResultFilter(labels=selection, since=since, until=until, suites=suites)
    policies = dict(DEFAULT_POLICIES if policies is None else policies)
    from canary.alerts.queries import list_alerts

    alerts = [a for a in list_alerts(store, since=since, labels=selection) if a.pending_at < until]
    grid = build_grid(
        store,
        since=since,
        until=until,
        selection=selection,
        alerts=alerts,
        policies=policies,
        baseline=baseline,
        alpha=alpha,
        by=DEFAULT_BY if by is None else tuple(by),
        suites=suites,
    )
    evidence = collect_evidence(
        store,
        grid.cells,
        {a.id: a.evidence_ids for a in alerts},
        grid.window.cohorts,
        window,
        policies,
        per_cell=samples_per_cell,
    )
    notes = list(grid.notes)
    if not grid.cohorts:
        notes.append(f"no results in {window.describe()}; widen --since or check --select")
    return Report(
        generated_at=generated,
        since=since,
        until=until,
        selection=selection,
        reference=grid.reference,
        by=grid.by,
        metrics=grid.metrics,
        cohorts=grid.cohorts,
        cells=grid.cells,
        alerts=alerts,
        alert_groups=_groups(store, alerts),
        pools=compare_pools(
            store,
            since=since,
            until=until,
            selection=selection,
            metrics=grid.metrics,
            policies=policies,
            labels=pool_labels,
            alpha=alpha,
            suites=suites,
        ),
        impact=_impact(store, grid, window),
        evidence=evidence,
        changes=[c for c in list_changes(store, since, until) if touches(c.labels, selection)],
        notes=notes,
        suites=suites,
        served=served_models(store, window, alpha=alpha),
    )


def touches(change: Mapping[str, str], selection: Mapping[str, str]) -> bool:
    """A change can touch the selected cohorts unless a label both name differs."""
    return all(selection.get(k, v) == v for k, v in change.items())


def _groups(store: Store, alerts: Sequence[Alert]) -> list[AlertGroup]:
    """Alerts as the daemon pages them: per attributed change, else one by one."""
    members: dict[str, list[int]] = {}
    changes: dict[str, Change | None] = {}
    for a in alerts:
        members.setdefault(a.group_key, []).append(a.id)
        if a.change_id is not None and a.group_key not in changes:
            changes[a.group_key] = get_change(store, a.change_id)
    return [AlertGroup(key, changes.get(key), ids) for key, ids in members.items()]


def _impact(store: Store, grid: Grid, window: ResultFilter) -> list[ImpactRow]:
    """Per metric that regressed somewhere: every cohort's flagged requests next to its flagged
    sessions, so the regressed cohorts stand against the healthy ones."""
    from canary.store.impact import session_impact

    shown = {c.key for c in grid.cohorts}
    rows = []
    # error_rate is counted from results, not scores: session_impact has nothing to count.
    for metric in sorted({c.metric for c in grid.cells if c.status == "regressed"} - {ERROR_RATE}):
        for impact in session_impact(store, window, metrics=[metric], group_by=grid.by):
            key = cohort_key(impact.labels, grid.by)
            if key in shown:
                rows.append(ImpactRow(metric, key, impact))
    return rows
