"""The one way to say "these results": runs, a time window, cohorts by label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection

from canary.store.models import ResultRow
from canary.store.repository import matching_cohort_ids


def result_filters(
    conn: Connection,
    *,
    run_ids: Sequence[int] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE clauses on `ResultRow`: any of ``run_ids``, started in [since, until), in the
    cohorts carrying every ``labels`` pair (no matching cohort selects nothing)."""
    where: list[ColumnElement[bool]] = []
    if run_ids:
        where.append(ResultRow.run_id.in_(list(run_ids)))
    if since is not None:
        where.append(ResultRow.started_at >= since)
    if until is not None:
        where.append(ResultRow.started_at < until)
    if labels:
        where.append(ResultRow.cohort_id.in_(matching_cohort_ids(conn, labels)))
    return where
