"""Reads for the on-call report and the gate's evidence: per-round counts, live monitors and
the results that show a regression.

Plain values out; what a metric means (which direction is worse, which metric counts errors)
is decided by the caller and handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, Connection, Select, case, func, select

from canary.records import ResultFilter
from canary.store.filters import filter_clauses
from canary.store.models import MonitorRow, ResultRow, RollupRow, ScoreRow
from canary.store.repository import Store
from canary.store.rollups import ERRORS, FLAGS, RollupSpec, RunSplit, split_runs
from canary.store.rollups.times import aware_at

Worst = Literal["errors", "slowest", "flagged", "lowest", "highest"]
"""Which results show a metric at its worst: failed requests, the slowest ones, flagged scores
(newest first), or the lowest or highest score values."""


@dataclass(frozen=True)
class RoundCount:
    """Flagged and total results of one run (round) × cohort × metric."""

    run_id: int
    cohort_id: int
    metric: str
    at: datetime
    """When the round's first result of this cohort started."""
    n: int
    k: int


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


def round_counts(
    store: Store,
    window: ResultFilter,
    cohort_ids: Sequence[int],
    scored: Sequence[str],
    *,
    errors_as: str | None = None,
    spec: RollupSpec | None = None,
) -> list[RoundCount]:
    """Per run × cohort: flagged/scored results of each ``scored`` metric and, under the
    metric name ``errors_as``, failed/all results, in ``cohort_ids`` and the window. With
    ``spec``, runs with fresh rollups wholly inside the window are read from them."""
    if not cohort_ids:
        return []
    out: list[RoundCount] = []
    with store.engine.connect() as conn:
        where: list[ColumnElement[bool]] | None = [
            ResultRow.cohort_id.in_(list(cohort_ids)),
            *_window(conn, window),
        ]
        split = split_runs(conn, window, spec, days=False) if spec is not None else None
        if split is not None and where is not None:
            where = [*where, ResultRow.run_id.in_(split.raw_runs)] if split.raw_runs else None
        if where is not None:
            out += _raw_round_counts(conn, where, scored, errors_as)
        if split is not None:
            out += _rolled_round_counts(conn, split, cohort_ids, scored, errors_as)
    return out


def _raw_round_counts(
    conn: Connection,
    where: list[ColumnElement[bool]],
    scored: Sequence[str],
    errors_as: str | None,
) -> list[RoundCount]:
    out: list[RoundCount] = []
    flagged = case((ScoreRow.flagged.is_(True), 1), else_=0)
    errored = case((ResultRow.error_kind.is_not(None), 1), else_=0)
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
            .where(*where, ScoreRow.metric.in_(list(scored)))
            .group_by(ResultRow.run_id, ResultRow.cohort_id, ScoreRow.metric)
        ):
            out.append(RoundCount(run_id, cohort_id, metric, at, int(n), int(k or 0)))
    if errors_as is not None:
        for run_id, cohort_id, at, n, k in conn.execute(
            select(
                ResultRow.run_id,
                ResultRow.cohort_id,
                func.min(ResultRow.started_at),
                func.count(),
                func.sum(errored),
            )
            .where(*where)
            .group_by(ResultRow.run_id, ResultRow.cohort_id)
        ):
            out.append(RoundCount(run_id, cohort_id, errors_as, at, int(n), int(k or 0)))
    return out


def _rolled_round_counts(
    conn: Connection,
    split: RunSplit,
    cohort_ids: Sequence[int],
    scored: Sequence[str],
    errors_as: str | None,
) -> list[RoundCount]:
    out: list[RoundCount] = []
    wanted = [
        (FLAGS, list(scored), None),
        *([(ERRORS, [""], errors_as)] if errors_as is not None else []),
    ]
    for aggregation, metrics, rename in wanted:
        if not metrics:
            continue
        for part in split.parts():  # runs only: per-round counts never read days
            for run_id, cohort_id, metric, at, n, k in conn.execute(
                select(
                    RollupRow.run_id,
                    RollupRow.cohort_id,
                    RollupRow.metric,
                    func.min(RollupRow.first_started_at),
                    func.sum(RollupRow.n),
                    func.sum(RollupRow.k),
                )
                .where(
                    RollupRow.aggregation == aggregation,
                    RollupRow.metric.in_(metrics),
                    part,
                    RollupRow.cohort_id.in_(list(cohort_ids)),
                )
                .group_by(RollupRow.run_id, RollupRow.cohort_id, RollupRow.metric)
            ):
                name = rename if rename is not None else str(metric)
                run = int(run_id or 0)
                out.append(RoundCount(run, int(cohort_id), name, aware_at(at), int(n), int(k)))
    return out


def live_monitors(store: Store, window: ResultFilter) -> list[MonitorView]:
    """Monitors of cohorts carrying every label of ``window`` that a daemon updated since its
    start (its end does not apply: a monitor holds only its current state).

    A monitor last touched before the window belongs to a daemon that no longer probes that
    cohort: its "ok" says nothing about the window, so it is left out.
    """
    query = select(
        MonitorRow.labels,
        MonitorRow.metric,
        MonitorRow.status,
        MonitorRow.state,
        MonitorRow.alert_id,
        MonitorRow.updated_at,
    )
    if window.since is not None:
        query = query.where(MonitorRow.updated_at >= window.since)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for labels, metric, status, state, alert_id, updated_at in rows:
        if any(labels.get(k) != v for k, v in window.labels.items()):
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


def worst_result_ids(
    store: Store,
    window: ResultFilter,
    cohort_ids: Sequence[int],
    metric: str,
    worst: Worst,
    limit: int,
) -> list[int]:
    """Up to ``limit`` ids of results in ``cohort_ids`` and the window's runs and time that
    show ``metric`` at its ``worst`` (its labels are taken as already resolved to cohorts)."""
    with store.engine.connect() as conn:
        where = [ResultRow.cohort_id.in_(list(cohort_ids)), *_window(conn, window)]
        query: Select[int]
        if worst == "errors":
            query = select(ResultRow.id).where(*where, ResultRow.error_kind.is_not(None))
        elif worst == "slowest":
            query = select(ResultRow.id).where(*where).order_by(ResultRow.latency_ms.desc())
        else:
            base = (
                select(ResultRow.id)
                .join(ScoreRow, ScoreRow.result_id == ResultRow.id)
                .where(*where, ScoreRow.metric == metric)
            )
            if worst == "flagged":
                query = base.where(ScoreRow.flagged.is_(True)).order_by(ResultRow.id.desc())
            elif worst == "lowest":
                query = base.order_by(ScoreRow.value.asc())
            else:
                query = base.order_by(ScoreRow.value.desc())
        return [int(i) for i in conn.execute(query.limit(limit)).scalars()]


def _window(conn: Connection, window: ResultFilter) -> list[ColumnElement[bool]]:
    """The filter's runs, time and suites (its labels are the caller's cohort ids)."""
    return filter_clauses(conn, window, labels=False)
