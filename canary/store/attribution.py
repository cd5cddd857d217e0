"""Flagged sessions per cohort × metric, and the recorded changes an alert may be blamed on.

The session is the monitors' unit: a front door routes a whole session to one pool (sticky), so
its requests' flags are not independent, and the CUSUM's false-alarm bound needs independent
observations. A probe outside a multi-turn session is a session of its own. One query counts
them, for a round (the monitors' input) and for a window (attribution, the replay's analysis).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, distinct, func, select

from canary.records import ERROR_RATE
from canary.store.models import ChangeRow, ResultRow, ScoreRow


@dataclass(frozen=True)
class CandidateChange:
    """A recorded change that took effect in an attribution window."""

    change_id: str
    at: datetime
    labels: dict[str, str]
    note: str = ""


def flagged_sessions(
    conn: Connection,
    metrics: Sequence[str],
    *,
    run_id: int | None = None,
    cohort_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[tuple[int, str], tuple[int, int]]:
    """(cohort id, metric) → (flagged, scored) sessions of the results in one run and/or cohort,
    started in [since, until] (both ends included); ``error_rate`` flags a session with an
    error. Cohort × metric pairs with nothing scored are left out."""
    where: list[ColumnElement[bool]] = []
    if run_id is not None:
        where.append(ResultRow.run_id == run_id)
    if cohort_id is not None:
        where.append(ResultRow.cohort_id == cohort_id)
    if since is not None:
        where.append(ResultRow.started_at >= since)
    if until is not None:
        where.append(ResultRow.started_at <= until)
    sessions = func.count(distinct(ResultRow.session_id))
    out: dict[tuple[int, str], tuple[int, int]] = {}
    scored = [m for m in metrics if m != ERROR_RATE]
    if scored:
        flag = case((ScoreRow.flagged.is_(True), ResultRow.session_id))
        for cohort, metric, n, k in conn.execute(
            select(ResultRow.cohort_id, ScoreRow.metric, sessions, func.count(distinct(flag)))
            .join(ScoreRow, ScoreRow.result_id == ResultRow.id)
            .where(*where, ScoreRow.metric.in_(scored))
            .group_by(ResultRow.cohort_id, ScoreRow.metric)
        ):
            out[(cohort, metric)] = (int(k or 0), int(n))
    if ERROR_RATE in metrics:
        errored = case((ResultRow.error_kind.is_not(None), ResultRow.session_id))
        for cohort, n, k in conn.execute(
            select(ResultRow.cohort_id, sessions, func.count(distinct(errored)))
            .where(*where)
            .group_by(ResultRow.cohort_id)
        ):
            out[(cohort, ERROR_RATE)] = (int(k or 0), int(n))
    return out


def counts_since(
    conn: Connection, cohort_id: int, metric: str, since: datetime, until: datetime
) -> tuple[int, int]:
    """(flagged, scored) sessions of a cohort × metric in [since, until]: the monitors' unit."""
    counts = flagged_sessions(conn, [metric], cohort_id=cohort_id, since=since, until=until)
    return counts.get((cohort_id, metric), (0, 0))


def changes_between(conn: Connection, since: datetime, until: datetime) -> list[CandidateChange]:
    """Recorded changes that took effect in [since, until], oldest first."""
    rows: Any = conn.execute(
        select(ChangeRow.change_id, ChangeRow.at, ChangeRow.labels, ChangeRow.note)
        .where(ChangeRow.at >= since, ChangeRow.at <= until)
        .order_by(ChangeRow.at, ChangeRow.id)
    )
    return [CandidateChange(r.change_id, r.at, dict(r.labels or {}), r.note or "") for r in rows]
