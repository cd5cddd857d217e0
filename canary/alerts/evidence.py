"""The stored outputs behind an alert: flagged results, and short samples for notifications."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from canary.compare.aggregate import ERROR_RATE
from canary.store.models import ResultRow, ScoreRow

EXCERPT_CHARS = 240


def collect_evidence(
    conn: Connection,
    cohort_id: int,
    metric: str,
    *,
    since: datetime | None = None,
    run_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """Ids of flagged results of a cohort × metric: the first ``limit`` since the onset."""
    where = [ResultRow.cohort_id == cohort_id]
    if since is not None:
        where.append(ResultRow.started_at >= since)
    if run_id is not None:
        where.append(ResultRow.run_id == run_id)
    if metric == ERROR_RATE:
        query = select(ResultRow.id).where(*where, ResultRow.error_kind.is_not(None))
    else:
        query = (
            select(ResultRow.id)
            .join(ScoreRow, ScoreRow.result_id == ResultRow.id)
            .where(*where, ScoreRow.metric == metric, ScoreRow.flagged.is_(True))
        )
    return [
        int(i) for i in conn.execute(query.order_by(ResultRow.started_at).limit(limit)).scalars()
    ]


def evidence_samples(
    conn: Connection, result_ids: Sequence[int], metric: str, *, limit: int = 3
) -> list[dict[str, Any]]:
    """Up to ``limit`` flagged outputs, each an excerpt and the detector's evidence."""
    ids = list(result_ids)[:limit]
    if not ids:
        return []
    rows = conn.execute(
        select(ResultRow.id, ResultRow.output_text, ResultRow.error_kind, ScoreRow.evidence)
        .outerjoin(ScoreRow, (ScoreRow.result_id == ResultRow.id) & (ScoreRow.metric == metric))
        .where(ResultRow.id.in_(ids))
    ).all()
    by_id = {r.id: r for r in rows}
    samples = []
    for result_id in ids:
        row = by_id.get(result_id)
        if row is None:
            continue
        text = row.output_text if row.output_text is not None else f"<{row.error_kind or 'pruned'}>"
        samples.append(
            {
                "result_id": result_id,
                "excerpt": text[:EXCERPT_CHARS],
                "evidence": row.evidence,
            }
        )
    return samples
