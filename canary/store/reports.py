"""Reads for the on-call report and the gate's evidence: per-round counts, live monitors and
the results that show a regression.

Plain values out; what a metric means (which direction is worse, which metric counts errors)
is decided by the caller and handed in.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    case,
    cast,
    extract,
    func,
    select,
    type_coerce,
)

from canary.records import ResultFilter
from canary.store.filters import filter_clauses
from canary.store.models import MonitorRow, ResultRow, RollupRow, RunRow, ScoreRow, SuiteRow
from canary.store.repository import Store
from canary.store.rollups import ERRORS, FLAGS, RollupSpec, RunSplit, split_runs
from canary.store.rollups.split import PART
from canary.store.rollups.times import aware, aware_at

Worst = Literal["errors", "slowest", "flagged", "lowest", "highest"]
"""Which results show a metric at its worst: failed requests, the slowest ones, flagged scores
(newest first), or the lowest or highest score values."""


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


TrendRow = tuple[int, int, int, str, datetime, int, int]
"""(slot, run id, cohort id, metric, at, n, k): one round (slot: its run id) or one time
bucket of rounds (slot: the bucket's index, run id: its newest run, at: its first round's)."""
RoundRow = tuple[int, int, str, datetime, int, int]
"""(run id, cohort id, metric, at, n, k): one round."""
G = TypeVar("G", bound=Hashable)


def trend_rows(
    store: Store,
    window: ResultFilter,
    cohort_ids: Sequence[int],
    scored: Sequence[str],
    *,
    errors_as: str | None = None,
    spec: RollupSpec | None = None,
    bucket: timedelta | None = None,
) -> list[TrendRow]:
    """Per run × cohort: flagged/scored results of each ``scored`` metric and, under the
    metric name ``errors_as``, failed/all results, in ``cohort_ids`` and the window; with
    ``spec``, runs with fresh rollups wholly inside the window are read from them. With
    ``bucket``, summed per bucket of rounds instead: rounds
    whose run started in the same ``bucket``-wide span (aligned to the epoch, like the
    daemon's slots). A bucket read partly raw and partly from rollups comes in several rows
    (add them up by slot); a week of 5-minute rounds is then hundreds of rows, not 10⁵."""
    if not cohort_ids:
        return []
    out: list[TrendRow] = []
    with store.engine.connect() as conn:
        where: list[ColumnElement[bool]] | None = [
            ResultRow.cohort_id.in_(list(cohort_ids)),
            *_window(conn, window),
        ]
        split = split_runs(conn, window, spec, days=False) if spec is not None else None
        if split is not None and where is not None:
            where = [*where, ResultRow.run_id.in_(split.raw_runs)] if split.raw_runs else None
        if where is not None:
            raw = _raw_round_counts(conn, where, scored, errors_as)
            out += [(r[0], *r) for r in raw] if bucket is None else _bucketed(conn, raw, bucket)
        if split is not None:
            out += _rolled_round_counts(conn, split, cohort_ids, scored, errors_as, bucket)
    return out


def window_rounds(
    store: Store, window: ResultFilter
) -> tuple[int, datetime | None, datetime | None]:
    """How many runs of the window's runs and suites started inside it, and the first and
    last start: how long a per-round series of the window would be."""
    where: list[ColumnElement[bool]] = []
    if window.run_ids:
        where.append(RunRow.id.in_(list(window.run_ids)))
    if window.suites:
        of_suites = select(SuiteRow.id).where(SuiteRow.name.in_(list(window.suites)))
        where.append(RunRow.suite_id.in_(of_suites))
    if window.since is not None:
        where.append(RunRow.started_at >= window.since)
    if window.until is not None:
        where.append(RunRow.started_at < window.until)
    query = select(func.count(), func.min(RunRow.started_at), func.max(RunRow.started_at))
    with store.engine.connect() as conn:
        n, first, last = conn.execute(query.where(*where)).one()
    return int(n), aware(first), aware(last)


def _raw_round_counts(
    conn: Connection,
    where: list[ColumnElement[bool]],
    scored: Sequence[str],
    errors_as: str | None,
) -> list[RoundRow]:
    """(run id, cohort id, metric, at, n, k) per round, from the raw rows."""
    out: list[RoundRow] = []
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
            out.append((run_id, cohort_id, metric, at, int(n), int(k or 0)))
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
            out.append((run_id, cohort_id, errors_as, at, int(n), int(k or 0)))
    return out


def fold_slots(
    rows: Iterable[TrendRow], group: Callable[[int], G]
) -> list[tuple[int, int, G, str, datetime, int, int]]:
    """Rows of the same slot, metric and ``group(cohort id)`` summed into one: (slot, newest
    run, group, metric, first ``at``, n, k). One fold for a bucket read in several parts (raw
    and rolled up), for rounds summed into buckets, and for cohorts merged under one key."""
    sums: dict[tuple[int, G, str], list[Any]] = {}
    for slot, run_id, cohort_id, metric, at, n, k in rows:
        where = (slot, group(cohort_id), metric)
        total = sums.get(where)
        if total is None:
            sums[where] = [run_id, at, n, k]
            continue
        total[0], total[1] = max(total[0], run_id), min(total[1], at)
        total[2] += n
        total[3] += k
    return [(s, run, g, m, at, n, k) for (s, g, m), (run, at, n, k) in sums.items()]


def _bucketed(conn: Connection, rounds: list[RoundRow], bucket: timedelta) -> list[TrendRow]:
    """Per-round rows summed per bucket of their runs' start (what `_rolled_round_counts`
    does in SQL, here for the few runs read raw)."""
    runs = sorted({r[0] for r in rounds})
    slot_of: dict[int, int] = {}
    seconds = int(bucket.total_seconds())
    for start in range(0, len(runs), PART):
        part = RunRow.id.in_(runs[start : start + PART])
        for run_id, started in conn.execute(select(RunRow.id, RunRow.started_at).where(part)):
            slot_of[int(run_id)] = int(aware_at(started).timestamp()) // seconds
    return fold_slots(((slot_of[r[0]], *r) for r in rounds), _same)


def _same(cohort_id: int) -> int:
    return cohort_id


def _rolled_round_counts(
    conn: Connection,
    split: RunSplit,
    cohort_ids: Sequence[int],
    scored: Sequence[str],
    errors_as: str | None,
    bucket: timedelta | None,
) -> list[TrendRow]:
    out: list[TrendRow] = []
    wanted = [
        (FLAGS, list(scored), None),
        *([(ERRORS, [""], errors_as)] if errors_as is not None else []),
    ]
    # The start time is read as the driver returns it (String: no result processing) and
    # parsed once per distinct value: a round's cohorts mostly share it.
    first = type_coerce(func.min(RollupRow.first_started_at), String())
    times: dict[Any, datetime] = {}
    for aggregation, metrics, rename in wanted:
        if not metrics:
            continue
        for part in split.parts():  # runs only: per-round counts never read days
            where = [
                RollupRow.aggregation == aggregation,
                RollupRow.metric.in_(metrics),
                part,
                RollupRow.cohort_id.in_(list(cohort_ids)),
            ]
            sums = [func.sum(RollupRow.n), func.sum(RollupRow.k)]
            if bucket is None:
                query = (
                    select(RollupRow.run_id.label("slot"), RollupRow.run_id, RollupRow.cohort_id)
                    .add_columns(RollupRow.metric, first, *sums)
                    .where(*where)
                    .group_by(RollupRow.run_id, RollupRow.cohort_id, RollupRow.metric)
                )
            else:
                slot = _epoch(conn, RunRow.started_at.expression) // int(bucket.total_seconds())
                query = (
                    select(slot, func.max(RollupRow.run_id), RollupRow.cohort_id)
                    .add_columns(RollupRow.metric, first, *sums)
                    .join(RunRow, RunRow.id == RollupRow.run_id)
                    .where(*where)
                    .group_by(slot, RollupRow.cohort_id, RollupRow.metric)
                )
            for slot_id, run_id, cohort_id, metric, at, n, k in conn.execute(query):
                when = times.get(at)
                if when is None:
                    when = times[at] = aware_at(at)
                name = rename if rename is not None else metric
                out.append((int(slot_id or 0), run_id or 0, cohort_id, name, when, int(n), int(k)))
    return out


def _epoch(conn: Connection, column: ColumnElement[datetime]) -> ColumnElement[int]:
    """Whole seconds since the epoch of a UTC time column (SQLite keeps naive UTC text)."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), Integer)


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
