"""The SQL the report needs beyond `aggregate`: per-round series and the daemon's monitors.

Series are per run (a round of the daemon or of `canary run`), not per hour: a round is the
unit the monitors judge, and an hourly bucket would blur a fault that began mid-hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from canary.compare.aggregate import ERROR_RATE
from canary.reports.model import TrendPoint
from canary.store import Store
from canary.store.models import MonitorRow, ResultRow, ScoreRow


@dataclass(frozen=True)
class MonitorView:
    """One daemon monitor (a full cohort label set × metric) and its live state."""

    labels: dict[str, str]
    metric: str
    status: str
    score: float
    threshold: float | None
    alert_id: int | None
    updated_at: datetime


def run_series(
    store: Store,
    key_of: Mapping[int, str],
    metrics: Sequence[str],
    since: datetime,
    until: datetime,
) -> dict[tuple[str, str], list[TrendPoint]]:
    """(cohort key, metric) → per-run flagged/total, oldest first; cohorts merged by key."""
    if not key_of:
        return {}
    window = [
        ResultRow.cohort_id.in_(list(key_of)),
        ResultRow.started_at >= since,
        ResultRow.started_at < until,
    ]
    counts: dict[tuple[str, str, int], list[Any]] = {}

    def add(cohort_id: int, metric: str, run_id: int, at: datetime, n: int, k: Any) -> None:
        slot = counts.setdefault((key_of[cohort_id], metric, run_id), [at, 0, 0])
        slot[0] = min(slot[0], at)
        slot[1] += int(k or 0)
        slot[2] += int(n)

    scored = [m for m in metrics if m != ERROR_RATE]
    flagged = case((ScoreRow.flagged.is_(True), 1), else_=0)
    with store.engine.connect() as conn:
        if scored:
            for run_id, cohort_id, metric, at, n, k in conn.execute(
                select(
                    ResultRow.run_id,
                    ResultRow.cohort_id,
                    ScoreRow.metric,
                    func.min(ResultRow.started_at),
                    func.count(),
                    func.sum(flagged),
                )
                .join(ScoreRow, ScoreRow.result_id == ResultRow.id)
                .where(*window, ScoreRow.metric.in_(scored))
                .group_by(ResultRow.run_id, ResultRow.cohort_id, ScoreRow.metric)
            ):
                add(cohort_id, metric, run_id, at, n, k)
        if ERROR_RATE in metrics:
            errored = case((ResultRow.error_kind.is_not(None), 1), else_=0)
            for run_id, cohort_id, at, n, k in conn.execute(
                select(
                    ResultRow.run_id,
                    ResultRow.cohort_id,
                    func.min(ResultRow.started_at),
                    func.count(),
                    func.sum(errored),
                )
                .where(*window)
                .group_by(ResultRow.run_id, ResultRow.cohort_id)
            ):
                add(cohort_id, ERROR_RATE, run_id, at, n, k)
    series: dict[tuple[str, str], list[TrendPoint]] = {}
    for (key, metric, run_id), (at, k, n) in counts.items():
        point = TrendPoint(at=at, run_id=run_id, k=k, n=n, rate=k / n if n else 0.0)
        series.setdefault((key, metric), []).append(point)
    for points in series.values():
        points.sort(key=lambda p: (p.at, p.run_id))
    return series


def live_monitors(store: Store, selection: Mapping[str, str], since: datetime) -> list[MonitorView]:
    """Monitors of cohorts in the selection that a daemon updated inside the window.

    A monitor last touched before the window belongs to a daemon that no longer probes that
    cohort: its "ok" says nothing about the window, so it is left out.
    """
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                MonitorRow.labels,
                MonitorRow.metric,
                MonitorRow.status,
                MonitorRow.state,
                MonitorRow.alert_id,
                MonitorRow.updated_at,
            ).where(MonitorRow.updated_at >= since)
        ).all()
    out = []
    for labels, metric, status, state, alert_id, updated_at in rows:
        if any(labels.get(k) != v for k, v in selection.items()):
            continue
        state = state or {}
        threshold = state.get("threshold")
        out.append(
            MonitorView(
                labels=dict(labels),
                metric=metric,
                status=status,
                score=float(state.get("score") or 0.0),
                threshold=float(threshold) if threshold is not None else None,
                alert_id=alert_id,
                updated_at=updated_at,
            )
        )
    return out
