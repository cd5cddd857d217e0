"""The one way to say "these results": runs, a time window, cohorts by label, suites."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, select

from canary.records import ResultFilter
from canary.store.models import ResultRow, RunRow, SuiteRow
from canary.store.repository import Store, matching_cohort_ids


def result_filters(
    conn: Connection,
    *,
    run_ids: Sequence[int] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    labels: Mapping[str, str] | None = None,
    suites: Sequence[str] = (),
) -> list[ColumnElement[bool]]:
    """WHERE clauses on `ResultRow`: any of ``run_ids``, started in [since, until), in the
    cohorts carrying every ``labels`` pair (no matching cohort selects nothing), of runs of
    any of the ``suites`` (by name, every version)."""
    where: list[ColumnElement[bool]] = []
    if run_ids:
        where.append(ResultRow.run_id.in_(list(run_ids)))
    if since is not None:
        where.append(ResultRow.started_at >= since)
    if until is not None:
        where.append(ResultRow.started_at < until)
    if labels:
        where.append(ResultRow.cohort_id.in_(matching_cohort_ids(conn, labels)))
    if suites:
        # results → runs → suites: a run sends one suite, so the run says which.
        of_suites = (
            select(RunRow.id)
            .join(SuiteRow, SuiteRow.id == RunRow.suite_id)
            .where(SuiteRow.name.in_(list(suites)))
        )
        where.append(ResultRow.run_id.in_(of_suites))
    return where


def filter_clauses(
    conn: Connection, filt: ResultFilter, *, labels: bool = True
) -> list[ColumnElement[bool]]:
    """`result_filters` of every field of ``filt``; without ``labels`` when the caller has
    already resolved them to cohort ids."""
    return result_filters(
        conn,
        run_ids=filt.run_ids,
        since=filt.since,
        until=filt.until,
        labels=filt.labels if labels else None,
        suites=filt.suites,
    )


def suite_names(store: Store) -> list[str]:
    """Every suite name stored, sorted: what `--suite` may name."""
    with store.engine.connect() as conn:
        return sorted(conn.execute(select(SuiteRow.name).distinct()).scalars())
