"""The stored outputs behind an alert: flagged results since its onset, and their texts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from canary.records import ERROR_RATE
from canary.store.models import ResultRow, ScoreRow


@dataclass(frozen=True)
class FlaggedOutput:
    """One stored output behind an alert, for a notification's samples."""

    result_id: int
    output_text: str | None
    error_kind: str | None
    evidence: Any


def flagged_result_ids(
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
    ids = conn.execute(query.order_by(ResultRow.started_at).limit(limit)).scalars()
    return [int(i) for i in ids]


def flagged_outputs(
    conn: Connection, result_ids: Sequence[int], metric: str
) -> list[FlaggedOutput]:
    """The outputs of ``result_ids`` (in that order; pruned ones left out) with the
    detector's evidence for ``metric``."""
    ids = list(result_ids)
    if not ids:
        return []
    rows = conn.execute(
        select(ResultRow.id, ResultRow.output_text, ResultRow.error_kind, ScoreRow.evidence)
        .outerjoin(ScoreRow, (ScoreRow.result_id == ResultRow.id) & (ScoreRow.metric == metric))
        .where(ResultRow.id.in_(ids))
    ).all()
    by_id = {r.id: r for r in rows}
    return [
        FlaggedOutput(i, by_id[i].output_text, by_id[i].error_kind, by_id[i].evidence)
        for i in ids
        if i in by_id
    ]
