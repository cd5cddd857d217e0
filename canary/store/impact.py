"""Request-level and session-level impact, side by side.

A 0.8% request rate can mean 30% of sessions saw a bad answer when routing is sticky: the
postmortem's lesson. Both numbers are computed in SQL (never by loading rows into Python), per
cohort, from the flagged scores of the results in a window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, case, distinct, func, select

from canary.records import ResultFilter
from canary.store.filters import result_filters
from canary.store.models import CohortRow, ResultRow, ScoreRow

if TYPE_CHECKING:
    from canary.store.repository import Store


@dataclass(frozen=True)
class CohortImpact:
    """How many requests and sessions of one cohort saw at least one flagged answer."""

    labels: dict[str, str]
    requests: int
    flagged_requests: int
    sessions: int
    flagged_sessions: int

    @property
    def request_rate(self) -> float:
        return self.flagged_requests / self.requests if self.requests else 0.0

    @property
    def session_rate(self) -> float:
        return self.flagged_sessions / self.sessions if self.sessions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "requests": self.requests,
            "flagged_requests": self.flagged_requests,
            "request_rate": self.request_rate,
            "sessions": self.sessions,
            "flagged_sessions": self.flagged_sessions,
            "session_rate": self.session_rate,
        }


def session_impact(
    store: Store,
    where: ResultFilter | None = None,
    *,
    metrics: Sequence[str] | None = None,
    group_by: Sequence[str] = ("endpoint",),
) -> list[CohortImpact]:
    """Per cohort (grouped by the ``group_by`` labels): flagged requests and flagged sessions.

    A result counts as flagged when any of its scores (of ``metrics``, default all) is flagged;
    a session counts when any of its results does.
    """
    with store.engine.connect() as conn:
        return impact_on(conn, where, metrics=metrics, group_by=group_by)


def impact_on(
    conn: Connection,
    where: ResultFilter | None = None,
    *,
    metrics: Sequence[str] | None = None,
    group_by: Sequence[str] = ("endpoint",),
) -> list[CohortImpact]:
    """`session_impact` on a caller's connection (the alert engine's write transaction)."""
    where = where or ResultFilter()
    flagged_filter: list[ColumnElement[bool]] = [ScoreRow.flagged.is_(True)]
    if metrics:
        flagged_filter.append(ScoreRow.metric.in_(list(metrics)))
    flagged_ids = select(ScoreRow.result_id).where(*flagged_filter).distinct().scalar_subquery()
    is_flagged = ResultRow.id.in_(flagged_ids)
    clauses = result_filters(
        conn,
        run_ids=where.run_ids,
        since=where.since,
        until=where.until,
        labels=where.labels,
        suites=where.suites,
    )
    rows = conn.execute(
        select(
            ResultRow.cohort_id,
            func.count(),
            func.sum(case((is_flagged, 1), else_=0)),
            func.count(distinct(ResultRow.session_id)),
            func.count(distinct(case((is_flagged, ResultRow.session_id)))),
        )
        .where(*clauses)
        .group_by(ResultRow.cohort_id)
    ).all()
    cohort_labels = dict(
        conn.execute(
            select(CohortRow.id, CohortRow.labels).where(CohortRow.id.in_([r[0] for r in rows]))
        ).all()
    )
    # Sessions are counted per cohort in SQL; merging cohorts into a group sums them, which is
    # exact because a session id is unique to one endpoint (the runner makes one per endpoint).
    merged: dict[tuple[str, ...], list[int]] = {}
    for cohort_id, n, n_flagged, n_sessions, n_flagged_sessions in rows:
        key = tuple(cohort_labels[cohort_id].get(k, "") for k in group_by)
        totals = merged.setdefault(key, [0, 0, 0, 0])
        for i, value in enumerate((n, n_flagged or 0, n_sessions, n_flagged_sessions)):
            totals[i] += int(value)
    return [
        CohortImpact(dict(zip(group_by, key, strict=True)), *totals)
        for key, totals in sorted(merged.items())
    ]
