"""Per-result scores by probe, in the order they ran: what a paired design matches before/after.

A paired test compares each probe with itself, so it needs, per cohort × metric × probe, the
stored results one by one (not a GROUP BY): the j-th after result of a probe is matched with the
j-th before result of the same probe and suite version. Rows come back as plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from canary.records import ResultFilter
from canary.store.aggregates import selection
from canary.store.models import ProbeRow, ResultRow, ScoreRow, SuiteRow
from canary.store.repository import Store


@dataclass(frozen=True)
class ProbeScore:
    """One stored score of one result, with what pairing needs to match it."""

    cohort_id: int
    suite: str
    suite_version: str
    probe_key: str
    metric: str
    value: float | None
    flagged: bool


def probe_scores(store: Store, filt: ResultFilter, metrics: Sequence[str]) -> list[ProbeScore]:
    """Scores of ``metrics`` on the results ``filt`` selects, ordered by result id (run order)."""
    if not metrics:
        return []
    with selection(store, filt) as sel:
        rows = sel.conn.execute(
            select(
                ResultRow.cohort_id,
                SuiteRow.name,
                SuiteRow.version,
                ProbeRow.probe_key,
                ScoreRow.metric,
                ScoreRow.value,
                ScoreRow.flagged,
            )
            .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
            .join(SuiteRow, SuiteRow.id == ProbeRow.suite_id)
            .where(ScoreRow.result_id == ResultRow.id, *sel.where, ScoreRow.metric.in_(metrics))
            .order_by(ResultRow.id, ScoreRow.metric)
        ).all()
    return [
        ProbeScore(int(c), str(s), str(v), str(p), str(m), None if x is None else float(x), bool(f))
        for c, s, v, p, m, x, f in rows
    ]
