"""Forgetting rollups: in the transaction that changes what they summarise.

Kept apart from `canary.store.rollups` so the repository (which writes results) can call it
without importing the rollup builder, which reads through the repository's `Store`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select, update

from canary.store.models import RollupDayRow, RollupRow, RollupRunRow


def forget_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Drop the rollups of ``run_ids`` and of the compacted days that sum them."""
    runs = sorted(set(run_ids))
    if not runs:
        return
    days = [
        int(d or 0)
        for d in conn.execute(
            select(RollupRunRow.day_id)
            .where(RollupRunRow.run_id.in_(runs), RollupRunRow.day_id.is_not(None))
            .distinct()
        ).scalars()
    ]
    if days:
        conn.execute(delete(RollupRow).where(RollupRow.day_id.in_(days)))
        # Runs of those days whose own rows were dropped are built again from their raw rows.
        conn.execute(
            delete(RollupRunRow).where(
                RollupRunRow.day_id.in_(days), RollupRunRow.run_rows.is_(False)
            )
        )
        conn.execute(update(RollupRunRow).where(RollupRunRow.day_id.in_(days)).values(day_id=None))
        conn.execute(delete(RollupDayRow).where(RollupDayRow.id.in_(days)))
    conn.execute(delete(RollupRow).where(RollupRow.run_id.in_(runs)))
    conn.execute(delete(RollupRunRow).where(RollupRunRow.run_id.in_(runs)))
