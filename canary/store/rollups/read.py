"""Sums over rollup rows, one query per part of a `RunSplit` (each read by its index), added
up in Python: the rolled-up share of an aggregate."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, func, select

from canary.store.models import RollupRow


def rolled_counts(
    conn: Connection, wheres: Sequence[Sequence[ColumnElement[bool]]], metrics: Sequence[str]
) -> list[tuple[int, str, str, int, int, int, int]]:
    """(cohort id, metric, fingerprint, n, k, sessions, flagged sessions) summed over the
    rolled-up runs and days."""
    sums: dict[tuple[int, str, str], list[int]] = {}
    for where in wheres:
        rows = conn.execute(
            select(
                RollupRow.cohort_id,
                RollupRow.metric,
                RollupRow.fingerprint,
                func.sum(RollupRow.n),
                func.sum(RollupRow.k),
                func.sum(RollupRow.sessions),
                func.sum(RollupRow.flagged_sessions),
            )
            .where(*where, RollupRow.metric.in_(list(metrics)))
            .group_by(RollupRow.cohort_id, RollupRow.metric, RollupRow.fingerprint)
        )
        for c, m, f, *values in rows:
            total = sums.setdefault((int(c), str(m), str(f)), [0, 0, 0, 0])
            for i, v in enumerate(values):
                total[i] += int(v or 0)
    return [(c, m, f, n, k, sn, sk) for (c, m, f), (n, k, sn, sk) in sums.items()]


def rolled_buckets(
    conn: Connection, wheres: Sequence[Sequence[ColumnElement[bool]]], metric: str
) -> list[tuple[int, str, str, str, int]]:
    """(cohort id, probe key, fingerprint, bucket, n) summed over the rolled-up runs and days."""
    sums: dict[tuple[int, str, str, str], int] = {}
    for where in wheres:
        rows = conn.execute(
            select(
                RollupRow.cohort_id,
                RollupRow.probe_key,
                RollupRow.fingerprint,
                RollupRow.bucket,
                func.sum(RollupRow.n),
            )
            .where(*where, RollupRow.metric == metric)
            .group_by(
                RollupRow.cohort_id, RollupRow.probe_key, RollupRow.fingerprint, RollupRow.bucket
            )
        )
        for c, p, f, b, n in rows:
            key = (int(c), str(p), str(f), str(b))
            sums[key] = sums.get(key, 0) + int(n or 0)
    return [(*key, n) for key, n in sums.items()]
