"""Forgetting rollups: in the transaction that changes what they summarise.

Kept apart from `canary.store.rollups` so the repository (which writes results) can call it
without importing the rollup builder, which reads through the repository's `Store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from canary.store.models import RollupDayRow, RollupRow, RollupRunRow

#: A week rollup's ``hours``: Monday 00:00 UTC to the next (`canary.store.rollups.weeks`).
WEEK_HOURS = 168


def week_start(at: datetime) -> datetime:
    """Monday 00:00 UTC of the week ``at`` lies in."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def drop_weeks_of_days(conn: Connection, day_ids: Sequence[int]) -> None:
    """Drop the week rollups that sum any of ``day_ids`` (days about to change or go): a
    week is always exactly its days, and is built again once they settle."""
    if not day_ids:
        return
    days = conn.execute(
        select(RollupDayRow.suite_id, RollupDayRow.day).where(
            RollupDayRow.id.in_(list(day_ids)), RollupDayRow.hours == 24
        )
    ).all()
    for suite_id, day in {(int(s), week_start(d)) for s, d in days}:
        weeks = select(RollupDayRow.id).where(
            RollupDayRow.suite_id == suite_id,
            RollupDayRow.hours == WEEK_HOURS,
            RollupDayRow.day == day,
        )
        drop_periods(conn, [int(w) for w in conn.execute(weeks).scalars()])


def drop_periods(conn: Connection, period_ids: Sequence[int]) -> None:
    """Drop the hour, day or week rollups ``period_ids``: their rows, the runs' links to
    them, and the periods themselves."""
    ids = list(period_ids)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        conn.execute(delete(RollupRow).where(RollupRow.day_id.in_(chunk)))
        for link in (RollupRunRow.day_id, RollupRunRow.hour_id):
            conn.execute(update(RollupRunRow).where(link.in_(chunk)).values({link.key: None}))
        conn.execute(delete(RollupDayRow).where(RollupDayRow.id.in_(chunk)))


def forget_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Drop the rollups of ``run_ids`` and of the compacted days, hours and weeks that sum
    them."""
    runs = sorted(set(run_ids))
    if not runs:
        return
    periods: set[int] = set()
    for link in (RollupRunRow.day_id, RollupRunRow.hour_id):
        periods.update(
            int(p or 0)
            for p in conn.execute(
                select(link).where(RollupRunRow.run_id.in_(runs), link.is_not(None)).distinct()
            ).scalars()
        )
    if periods:
        ids = sorted(periods)
        drop_weeks_of_days(conn, ids)
        # Runs of those days whose own rows were dropped are built again from their raw rows.
        conn.execute(
            delete(RollupRunRow).where(
                RollupRunRow.day_id.in_(ids), RollupRunRow.run_rows.is_(False)
            )
        )
        drop_periods(conn, ids)
    conn.execute(delete(RollupRow).where(RollupRow.run_id.in_(runs)))
    conn.execute(delete(RollupRunRow).where(RollupRunRow.run_id.in_(runs)))
