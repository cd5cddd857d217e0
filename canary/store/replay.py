"""Reads for the replay's results table: the cohorts, and what one cohort × metric saw in a
stretch of time (sessions, probes, rounds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, select

from canary.store.attribution import counts_since
from canary.store.models import CohortRow, ResultRow, ScoreRow
from canary.store.repository import Store


@dataclass(frozen=True)
class CohortWindow:
    """One cohort × metric in [since, until] (both ends included, as the monitors count)."""

    flagged_sessions: int
    sessions: int
    """Sessions with a scored result: the monitors' independent unit."""
    probes: int
    """Results that carry a score of the metric."""
    rounds: int
    """Runs with any result of the cohort."""


def cohort_labels(store: Store) -> dict[int, dict[str, str]]:
    """Every cohort's labels by id, in id order."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(CohortRow.id, CohortRow.labels).order_by(CohortRow.id))
        return {int(cohort_id): dict(labels) for cohort_id, labels in rows}


def cohort_window(
    store: Store, cohort_id: int, metric: str, since: datetime, until: datetime
) -> CohortWindow:
    """Sessions, probes and rounds of ``cohort_id`` × ``metric`` in [since, until]."""
    window = [
        ResultRow.cohort_id == cohort_id,
        ResultRow.started_at >= since,
        ResultRow.started_at <= until,
    ]
    with store.engine.connect() as conn:
        k, n = counts_since(conn, cohort_id, metric, since, until)
        probes = conn.execute(
            select(func.count())
            .select_from(ResultRow)
            .join(ScoreRow, ScoreRow.result_id == ResultRow.id)
            .where(*window, ScoreRow.metric == metric)
        ).scalar_one()
        rounds = conn.execute(
            select(func.count(distinct(ResultRow.run_id))).where(*window)
        ).scalar_one()
    return CohortWindow(k, n, int(probes), int(rounds))
