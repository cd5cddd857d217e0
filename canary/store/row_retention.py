"""Retention of whole result rows: delete results (and their scores) past a horizon.

Pruning raw outputs (`canary.store.retention`) keeps every row, so the tables still grow by
hundreds of millions of rows a year. Past `RetentionPolicy.result_days` the rows themselves go:
on a partitioned PostgreSQL store a whole month at a time (DETACH and DROP, no row-by-row
delete, no table bloat), elsewhere in id batches. Three things survive:

- results an alert cites as evidence, with their scores (on PostgreSQL they move to the
  DEFAULT partition);
- rollups: a run's sums are kept, so compare, reports and alerts see history unchanged; a run
  without rollups yet is never dropped (its month, on PostgreSQL, waits for the next prune);
- the run rows themselves.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime

from sqlalchemy import delete, exists, select, text

from canary.store.models import ResultRow, ScoreRow
from canary.store.partitions import (
    drop_month,
    droppable_months,
    is_partitioned,
    partition_name,
)
from canary.store.repository import Store
from canary.store.rollup_models import RollupRunRow


def drop_old_results(
    store: Store, cutoff: datetime, evidence: Set[int], batch_size: int, dry_run: bool
) -> int:
    """Delete results started before ``cutoff`` except ``evidence``; returns how many went
    (or, with ``dry_run``, would go)."""
    with store.engine.connect() as conn:
        partitioned = is_partitioned(conn)
    if partitioned:
        return _drop_months(store, cutoff, evidence, dry_run)
    return _delete_batches(store, cutoff, evidence, batch_size, dry_run)


def _drop_months(store: Store, cutoff: datetime, evidence: Set[int], dry_run: bool) -> int:
    dropped = 0
    with store.engine.connect() as conn:
        months = droppable_months(conn, cutoff)
    for month in months:
        with store.write_transaction() as conn:
            table = partition_name("results", month)
            unrolled = conn.execute(
                text(
                    f"SELECT 1 FROM {table} r WHERE NOT EXISTS "
                    "(SELECT 1 FROM rollup_runs u WHERE u.run_id = r.run_id) LIMIT 1"
                )
            ).first()
            if unrolled is not None:
                continue  # a run of this month has no rollups yet: its sums would be lost
            if dry_run:
                total = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                kept = conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE id = ANY(:ids)"),
                    {"ids": sorted(evidence)},
                ).scalar_one()
                dropped += int(total) - int(kept)
                continue
            dropped += drop_month(conn, month, evidence)
    return dropped


def _delete_batches(
    store: Store, cutoff: datetime, evidence: Set[int], batch_size: int, dry_run: bool
) -> int:
    rolled_up = exists().where(RollupRunRow.run_id == ResultRow.run_id)
    deleted = 0
    last_id = 0
    while True:
        with store.engine.begin() if dry_run else store.write_transaction() as conn:
            ids = list(
                conn.execute(
                    select(ResultRow.id)
                    .where(ResultRow.id > last_id, ResultRow.started_at < cutoff, rolled_up)
                    .order_by(ResultRow.id)
                    .limit(batch_size)
                ).scalars()
            )
            if not ids:
                return deleted
            last_id = ids[-1]
            doomed = [i for i in ids if i not in evidence]
            if dry_run or not doomed:
                deleted += len(doomed)
                continue
            conn.execute(delete(ScoreRow).where(ScoreRow.result_id.in_(doomed)))
            done = conn.execute(delete(ResultRow).where(ResultRow.id.in_(doomed)))
            deleted += done.rowcount
