"""Cohort health: per cohort, its results and errors in a window, its monitors and open alerts.

Results are counted by the database (one GROUP BY over the `(started_at)` index); only the small
tables (cohorts, monitors, open alerts) are read into Python and matched by label fingerprint.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from canary.config.selection import labels_match
from canary.records import ResultFilter
from canary.store.alert_values import OPEN_ALERT_STATUSES
from canary.store.filters import result_filters
from canary.store.models import AlertRow, CohortRow, MonitorRow, ResultRow, RollupRow
from canary.store.repository import Store, cohort_fingerprint
from canary.store.rollups import ERRORS, RollupSpec, split_runs
from canary.store.rollups.times import aware

CohortStatus = Literal["firing", "pending", "errors", "silent", "ok"]
#: Worst first: the order `cohort_health` sorts by.
STATUS_ORDER: tuple[CohortStatus, ...] = ("firing", "pending", "errors", "silent", "ok")


@dataclass(frozen=True)
class CohortHealth:
    """One cohort (a distinct label set) over a time window."""

    id: int
    labels: dict[str, str]
    results: int
    """Results stored in the window."""
    errors: int
    """Of those, results with an error (no answer, an HTTP error, an unparseable body)."""
    last_seen: datetime | None
    """Newest result: in the window, or before it for a cohort with none in the window."""
    monitors: dict[str, str] = field(default_factory=dict)
    """Alert monitor status per metric (ok, pending or firing); empty without a daemon."""
    open_alerts: int = 0
    """Pending and firing alerts."""
    firing_alerts: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.results if self.results else 0.0

    @property
    def status(self) -> CohortStatus:
        """The worst of: an alert or monitor firing or pending, errors, no results at all."""
        states = set(self.monitors.values())
        if self.firing_alerts or "firing" in states:
            return "firing"
        if self.open_alerts or "pending" in states:
            return "pending"
        if self.errors:
            return "errors"
        return "silent" if self.results == 0 else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "labels": dict(self.labels),
            "status": self.status,
            "results": self.results,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "monitors": dict(sorted(self.monitors.items())),
            "open_alerts": self.open_alerts,
            "firing_alerts": self.firing_alerts,
        }


def cohort_health(
    store: Store,
    *,
    since: datetime,
    labels: Mapping[str, str] | None = None,
    suites: Sequence[str] = (),
    spec: RollupSpec | None = None,
) -> list[CohortHealth]:
    """Cohorts with results since ``since`` (of ``suites``, default all), or with an open alert
    or a monitor not ok, that carry every ``labels`` pair; problems first (see
    `STATUS_ORDER`), then by error rate. With ``spec``, finished runs are counted from their
    rollups."""
    wanted = dict(labels or {})
    with store.engine.begin() as conn:
        cohorts = {
            cohort_id: dict(cohort_labels)
            for cohort_id, cohort_labels in conn.execute(select(CohortRow.id, CohortRow.labels))
            if labels_match(cohort_labels, wanted)
        }
        if not cohorts:
            return []
        by_fingerprint = {cohort_fingerprint(v): k for k, v in cohorts.items()}
        counts = _window_counts(conn, since, list(cohorts) if wanted else None, suites, spec)
        monitors: dict[int, dict[str, str]] = defaultdict(dict)
        for monitor_labels, metric, status in conn.execute(
            select(MonitorRow.labels, MonitorRow.metric, MonitorRow.status)
        ):
            cohort_id = by_fingerprint.get(cohort_fingerprint(monitor_labels))
            if cohort_id is not None:
                monitors[cohort_id][metric] = status
        open_alerts: dict[int, list[str]] = defaultdict(list)
        for alert_labels, status in conn.execute(
            select(AlertRow.labels, AlertRow.status).where(AlertRow.status.in_(OPEN_ALERT_STATUSES))
        ):
            cohort_id = by_fingerprint.get(cohort_fingerprint(alert_labels))
            if cohort_id is not None:
                open_alerts[cohort_id].append(status)
        troubled = {c for c, m in monitors.items() if set(m.values()) - {"ok"}} | set(open_alerts)
        shown = set(counts) | troubled
        health = []
        for cohort_id in shown:
            results, errors, last_seen = counts.get(cohort_id, (0, 0, None))
            if last_seen is None:
                last_seen = _last_seen(conn, cohort_id)
            health.append(
                CohortHealth(
                    id=cohort_id,
                    labels=cohorts[cohort_id],
                    results=results,
                    errors=errors,
                    last_seen=last_seen,
                    monitors=monitors.get(cohort_id, {}),
                    open_alerts=len(open_alerts.get(cohort_id, [])),
                    firing_alerts=open_alerts.get(cohort_id, []).count("firing"),
                )
            )
    return sorted(health, key=_rank)


def _window_counts(
    conn: Connection,
    since: datetime,
    cohort_ids: list[int] | None,
    suites: Sequence[str],
    spec: RollupSpec | None,
) -> dict[int, tuple[int, int, datetime | None]]:
    where = result_filters(conn, since=since, suites=suites)
    if cohort_ids is not None:
        where.append(ResultRow.cohort_id.in_(cohort_ids))
    split = None
    if spec is not None:
        split = split_runs(conn, ResultFilter(since=since, suites=tuple(suites)), spec)
        where.append(ResultRow.run_id.in_(split.raw_runs))
    counts: dict[int, tuple[int, int, datetime | None]] = {}
    if split is None or split.raw_runs:
        query = (
            select(
                ResultRow.cohort_id,
                func.count(),
                func.count(ResultRow.error_kind),
                func.max(ResultRow.started_at),
            )
            .where(*where)
            .group_by(ResultRow.cohort_id)
        )
        counts = {row[0]: (row[1], row[2], row[3]) for row in conn.execute(query)}
    if split is not None:
        for part in split.parts():
            rolled = select(
                RollupRow.cohort_id,
                func.sum(RollupRow.n),
                func.sum(RollupRow.k),
                func.max(RollupRow.last_started_at),
            ).where(RollupRow.aggregation == ERRORS, RollupRow.metric == "", part)
            if cohort_ids is not None:
                rolled = rolled.where(RollupRow.cohort_id.in_(cohort_ids))
            for cohort_id, n, k, last in conn.execute(rolled.group_by(RollupRow.cohort_id)):
                raw_n, raw_k, raw_last = counts.get(cohort_id, (0, 0, None))
                newest = aware(last)
                if raw_last is not None and (newest is None or raw_last > newest):
                    newest = raw_last
                counts[cohort_id] = (raw_n + int(n), raw_k + int(k), newest)
    return counts


def _last_seen(conn: Connection, cohort_id: int) -> datetime | None:
    # One MAX per silent cohort: an index lookup on (cohort_id, started_at), never a scan.
    return conn.execute(
        select(func.max(ResultRow.started_at)).where(ResultRow.cohort_id == cohort_id)
    ).scalar()


def _rank(health: CohortHealth) -> tuple[int, float, list[tuple[str, str]]]:
    return STATUS_ORDER.index(health.status), -health.error_rate, sorted(health.labels.items())
