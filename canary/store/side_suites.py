"""Which suites a compare side holds, per part: rolled-up runs and days, then raw rows.

`suite_parts` takes the `canary.store.aggregates.Selection` as ``sel`` without importing it,
so the two modules do not import each other (lint-imports forbids cycles).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select

from canary.store.models import ResultRow, RollupDayRow, RollupRow, RunRow, SuiteRow
from canary.store.rollups import ERRORS


def suite_parts(sel: Any, version: Any, count: Any) -> Iterator[Any]:
    """Rows of (cohort id, suite name, suite version or None, results or None) per part
    of the selection: rolled-up runs and days from their `errors` rollups (whose n counts
    every result), the rest from the raw rows. A result's suite is its run's:
    `save_results` refuses any other."""
    keys = [SuiteRow.name] if version is None else [SuiteRow.name, version]
    raw = sel.raw_where(rolled_up=True)
    if raw is not None:
        yield _padded(
            sel.conn.execute(
                select(ResultRow.cohort_id, *keys, *([count] if count is not None else []))
                .join(RunRow, RunRow.id == ResultRow.run_id)
                .join(SuiteRow, SuiteRow.id == RunRow.suite_id)
                .where(*raw)
                .group_by(ResultRow.cohort_id, *keys)
            ),
            version is not None,
            count is not None,
        )
    if not sel.uses_rollups:
        return
    suite_id = func.coalesce(RunRow.suite_id, RollupDayRow.suite_id)
    total = [func.sum(RollupRow.n)] if count is not None else []
    for where in sel.rollup_wheres(ERRORS):
        yield _padded(
            sel.conn.execute(
                select(RollupRow.cohort_id, *keys, *total)
                .select_from(RollupRow)
                .outerjoin(RunRow, RunRow.id == RollupRow.run_id)
                .outerjoin(RollupDayRow, RollupDayRow.id == RollupRow.day_id)
                .join(SuiteRow, SuiteRow.id == suite_id)
                .where(*where, RollupRow.metric == "")  # errors rows: the covering index
                .group_by(RollupRow.cohort_id, *keys)
            ),
            version is not None,
            count is not None,
        )


def _padded(rows: Any, versioned: bool, counted: bool) -> Iterator[tuple[Any, ...]]:
    """(cohort, name, version or None, count or None) from a row of the columns asked for."""
    for row in rows:
        cohort, name, *rest = row
        version = rest.pop(0) if versioned else None
        yield (cohort, name, version, rest[0] if counted else None)
