"""Forgetting rollups: in the transaction that changes what they summarise.

Kept apart from `canary.store.rollups` so the repository (which writes results) can call it
without importing the rollup builder, which reads through the repository's `Store`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select, update

from canary.store.models import RollupDayRow, RollupRow, RollupRunRow


def forget_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Drop the rollups of ``run_ids`` and of the compacted days and hours that sum them."""
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
        conn.execute(delete(RollupRow).where(RollupRow.day_id.in_(ids)))
        # Runs of those days whose own rows were dropped are built again from their raw rows.
        conn.execute(
            delete(RollupRunRow).where(
                RollupRunRow.day_id.in_(ids), RollupRunRow.run_rows.is_(False)
            )
        )
        conn.execute(update(RollupRunRow).where(RollupRunRow.day_id.in_(ids)).values(day_id=None))
        conn.execute(update(RollupRunRow).where(RollupRunRow.hour_id.in_(ids)).values(hour_id=None))
        conn.execute(delete(RollupDayRow).where(RollupDayRow.id.in_(ids)))
    conn.execute(delete(RollupRow).where(RollupRow.run_id.in_(runs)))
    conn.execute(delete(RollupRunRow).where(RollupRunRow.run_id.in_(runs)))
