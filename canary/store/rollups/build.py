"""Building a run's rollups from its raw rows, and dropping them when the run changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    case,
    distinct,
    func,
    insert,
    select,
)

from canary.store.binning import Bins
from canary.store.models import (
    ProbeRow,
    ResultRow,
    RollupRow,
    RollupRunRow,
    RunRow,
    ScoreRow,
    utcnow,
)
from canary.store.repository import Store
from canary.store.rollup_marks import forget_runs
from canary.store.rollups.buckets import rollup_bin_index
from canary.store.rollups.days import compact_days_on
from canary.store.rollups.spec import BINS, CATEGORIES, ERRORS, FLAGS, LATENCY, RollupSpec
from canary.store.rollups.times import aware as _aware
from canary.store.rollups.weeks import compact_weeks_on

#: Runs built per transaction: bounded memory and lock time on a big backfill.
BUILD_BATCH = 200


def invalidate_runs(conn: Connection, result_ids: Iterable[int]) -> None:
    """Forget the rollups of the runs holding ``result_ids`` (their scores are changing), and
    of the days that sum them, in the caller's transaction."""
    ids = sorted(set(result_ids))
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        runs = select(ResultRow.run_id).where(ResultRow.id.in_(chunk)).distinct()
        forget_runs(conn, [int(r) for r in conn.execute(runs).scalars()])


def stale_run_ids(conn: Connection, spec: RollupSpec) -> list[int]:
    """Finished runs without rollups under ``spec``: what `build_rollups` has to do."""
    fresh = select(RollupRunRow.run_id).where(RollupRunRow.spec_key == spec.key)
    query = (
        select(RunRow.id)
        .where(RunRow.status != "running", RunRow.id.not_in(fresh))
        .order_by(RunRow.id)
    )
    return [int(r) for r in conn.execute(query).scalars()]


def build_rollups(
    store: Store,
    spec: RollupSpec,
    run_ids: Sequence[int] | None = None,
    *,
    now: datetime | None = None,
) -> int:
    """Build (or rebuild) the rollups of ``run_ids`` (default: every finished run that has
    none under ``spec``), then compact the hours, days and weeks that ended by ``now``; returns
    how many runs were built."""
    with store.engine.connect() as conn:
        todo = list(run_ids) if run_ids is not None else stale_run_ids(conn, spec)
    for start in range(0, len(todo), BUILD_BATCH):
        with store.write_transaction() as conn:
            build_rollups_on(conn, spec, todo[start : start + BUILD_BATCH])
    now = now or utcnow()
    with store.write_transaction() as conn:
        compact_days_on(conn, spec, now=now)
        compact_weeks_on(conn, spec, now=now)
    return len(todo)


def build_rollups_on(conn: Connection, spec: RollupSpec, run_ids: Sequence[int]) -> None:
    """`build_rollups` for ``run_ids`` on an open transaction (a migration's, or the store's)."""
    if not run_ids:
        return
    runs = list(run_ids)
    forget_runs(conn, runs)
    dialect = conn.dialect.name
    errors = _errors(conn, runs)
    rows = list(errors)
    rows += _flags(conn, runs)
    for metric, bins in spec.latency.items():
        rows += _latency(conn, runs, metric, bins, dialect)
    rows += _bins(conn, runs, spec.bins, dialect)
    for metric, key in spec.categories.items():
        rows += _categories(conn, runs, metric, key)
    if rows:
        conn.execute(insert(RollupRow), rows)
    by_run: dict[int, list[dict[str, Any]]] = {}
    for row in errors:
        by_run.setdefault(row["run_id"], []).append(row)
    now = utcnow()
    conn.execute(
        insert(RollupRunRow),
        [
            {"run_id": r, "spec_key": spec.key, **_span(by_run.get(r, [])), "built_at": now}
            for r in runs
        ],
    )


def _span(mine: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's start times, result and error counts, from its cohorts' `errors` rows (every
    result of the run is in exactly one), so its results are not read a second time."""
    firsts = [row["first_started_at"] for row in mine if row["first_started_at"] is not None]
    lasts = [row["last_started_at"] for row in mine if row["last_started_at"] is not None]
    return {
        "first_started_at": min(firsts, default=None),
        "last_started_at": max(lasts, default=None),
        "results": sum(row["n"] for row in mine),
        "errors": sum(row["k"] for row in mine),
        "run_rows": True,
    }


def _row(
    run_id: Any, cohort_id: Any, aggregation: str, metric: str, **values: Any
) -> dict[str, Any]:
    return {
        "run_id": int(run_id),
        "cohort_id": int(cohort_id),
        "aggregation": aggregation,
        "metric": metric,
        "fingerprint": values.get("fingerprint", "") or "",
        "probe_key": values.get("probe_key", ""),
        "bucket": values.get("bucket", ""),
        "n": int(values.get("n", 0)),
        "k": int(values.get("k", 0) or 0),
        "sessions": int(values.get("sessions", 0)),
        "flagged_sessions": int(values.get("flagged_sessions", 0)),
        "first_started_at": _aware(values.get("first")),
        "last_started_at": _aware(values.get("last")),
    }


def _errors(conn: Connection, runs: list[int]) -> list[dict[str, Any]]:
    errored = case((ResultRow.error_kind.is_not(None), 1), else_=0)
    errored_session = case((ResultRow.error_kind.is_not(None), ResultRow.session_id))
    query = (
        select(
            ResultRow.run_id,
            ResultRow.cohort_id,
            func.count(),
            func.sum(errored),
            func.count(distinct(ResultRow.session_id)),
            func.count(distinct(errored_session)),
            func.min(ResultRow.started_at),
            func.max(ResultRow.started_at),
        )
        .where(ResultRow.run_id.in_(runs))
        .group_by(ResultRow.run_id, ResultRow.cohort_id)
    )
    return [
        _row(r, c, ERRORS, "", n=n, k=k, sessions=sn, flagged_sessions=sk, first=lo, last=hi)
        for r, c, n, k, sn, sk, lo, hi in conn.execute(query)
    ]


def _flags(conn: Connection, runs: list[int]) -> list[dict[str, Any]]:
    flagged = case((ScoreRow.flagged.is_(True), 1), else_=0)
    flagged_session = case((ScoreRow.flagged.is_(True), ResultRow.session_id))
    query = (
        select(
            ResultRow.run_id,
            ResultRow.cohort_id,
            ScoreRow.metric,
            ScoreRow.detector_version,
            func.count(),
            func.sum(flagged),
            func.count(distinct(ResultRow.session_id)),
            func.count(distinct(flagged_session)),
            func.min(ResultRow.started_at),
            func.max(ResultRow.started_at),
        )
        .where(ScoreRow.result_id == ResultRow.id, ResultRow.run_id.in_(runs))
        .group_by(ResultRow.run_id, ResultRow.cohort_id, ScoreRow.metric, ScoreRow.detector_version)
    )
    return [
        _row(
            r,
            c,
            FLAGS,
            m,
            fingerprint=f,
            n=n,
            k=k,
            sessions=sn,
            flagged_sessions=sk,
            first=lo,
            last=hi,
        )
        for r, c, m, f, n, k, sn, sk, lo, hi in conn.execute(query)
    ]


def _latency(
    conn: Connection, runs: list[int], metric: str, bins: Bins, dialect: str
) -> list[dict[str, Any]]:
    index = rollup_bin_index(ResultRow.latency_ms, bins, dialect)
    query = (
        select(ResultRow.run_id, ResultRow.cohort_id, index, func.count())
        .where(ResultRow.run_id.in_(runs), ResultRow.error_kind.is_(None))
        .group_by(ResultRow.run_id, ResultRow.cohort_id, index)
    )
    return [
        _row(r, c, LATENCY, metric, bucket=str(int(i)), n=n) for r, c, i, n in conn.execute(query)
    ]


def _bins(
    conn: Connection, runs: list[int], spec: Mapping[str, Bins], dialect: str
) -> list[dict[str, Any]]:
    """Every binned metric's histogram in one pass over the runs' scores (one pass per metric
    read the whole run again for each)."""
    if not spec:
        return []
    index = case(
        *(
            (ScoreRow.metric == m, rollup_bin_index(ScoreRow.value, b, dialect))
            for m, b in spec.items()
        )
    )
    query = (
        select(
            ResultRow.run_id,
            ResultRow.cohort_id,
            ScoreRow.metric,
            ScoreRow.detector_version,
            index,
            func.count(),
        )
        .where(
            ScoreRow.result_id == ResultRow.id,
            ResultRow.run_id.in_(runs),
            ScoreRow.metric.in_(list(spec)),
            ScoreRow.value.is_not(None),
        )
        .group_by(
            ResultRow.run_id, ResultRow.cohort_id, ScoreRow.metric, ScoreRow.detector_version, index
        )
    )
    return [
        _row(r, c, BINS, m, fingerprint=f, bucket=str(int(i)), n=n)
        for r, c, m, f, i, n in conn.execute(query)
    ]


def _categories(conn: Connection, runs: list[int], metric: str, key: str) -> list[dict[str, Any]]:
    category = ScoreRow.evidence[key].as_string()
    query = (
        select(
            ResultRow.run_id,
            ResultRow.cohort_id,
            ProbeRow.probe_key,
            ScoreRow.detector_version,
            category,
            func.count(),
        )
        .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
        .where(
            ScoreRow.result_id == ResultRow.id,
            ResultRow.run_id.in_(runs),
            ScoreRow.metric == metric,
        )
        .group_by(
            ResultRow.run_id,
            ResultRow.cohort_id,
            ProbeRow.probe_key,
            ScoreRow.detector_version,
            category,
        )
    )
    return [
        _row(r, c, CATEGORIES, metric, fingerprint=f, probe_key=p, bucket=str(v), n=n)
        for r, c, p, f, v, n in conn.execute(query)
    ]
