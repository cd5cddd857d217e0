"""Compacting whole UTC days of a suite's run rollups into day rollups."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from canary.store.models import (
    RollupDayRow,
    RollupRow,
    RollupRunRow,
    RunRow,
    utcnow,
)
from canary.store.rollups.spec import RollupSpec
from canary.store.rollups.times import aware as _aware

#: A day is compacted once it has been over this long: late rounds of it have landed.
SETTLE = timedelta(hours=1)
#: Per-run rollups are kept this long after their day is compacted (per-round trends in
#: reports); older rounds are read through their day, or raw when a window cuts the day.
KEEP_RUN_ROLLUPS = timedelta(days=14)


def compact_days_on(conn: Connection, spec: RollupSpec, *, now: datetime | None = None) -> int:
    """Sum whole UTC days of each suite's rolled-up runs into day rollups; returns the days
    compacted. A day is compacted when it ended `SETTLE` ago and every run of its suite that
    started in or just before it has fresh rollups (none is running or unscored)."""
    now = now or utcnow()
    rows = conn.execute(
        select(RollupRunRow.run_id, RunRow.suite_id, RollupRunRow.first_started_at)
        .join(RunRow, RunRow.id == RollupRunRow.run_id)
        .where(
            RollupRunRow.spec_key == spec.key,
            RollupRunRow.day_id.is_(None),
            RollupRunRow.first_started_at.is_not(None),
        )
    ).all()
    pending: dict[tuple[datetime, int], list[int]] = {}
    for run_id, suite_id, first in rows:
        start = _aware(first)
        assert start is not None
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if day + timedelta(days=1) + SETTLE <= now:
            pending.setdefault((day, int(suite_id)), []).append(int(run_id))
    done = 0
    for (day, suite_id), _ in sorted(pending.items()):
        if _has_unrolled_runs(conn, spec, suite_id, day):
            continue
        _compact_day(conn, spec, suite_id, day)
        done += 1
    _drop_old_run_rows(conn, now - KEEP_RUN_ROLLUPS)
    return done


def _drop_old_run_rows(conn: Connection, before: datetime) -> None:
    """Drop the run rows of compacted runs older than ``before``: their day answers for them."""
    old = select(RollupRunRow.run_id).where(
        RollupRunRow.day_id.is_not(None),
        RollupRunRow.run_rows.is_(True),
        RollupRunRow.last_started_at < before,
    )
    runs = [int(r) for r in conn.execute(old).scalars()]
    for start in range(0, len(runs), 5000):
        chunk = runs[start : start + 5000]
        conn.execute(delete(RollupRow).where(RollupRow.run_id.in_(chunk)))
        conn.execute(
            update(RollupRunRow).where(RollupRunRow.run_id.in_(chunk)).values(run_rows=False)
        )


def _has_unrolled_runs(conn: Connection, spec: RollupSpec, suite_id: int, day: datetime) -> bool:
    """Whether a run of the suite that may hold results of ``day`` has no fresh rollups."""
    fresh = select(RollupRunRow.run_id).where(RollupRunRow.spec_key == spec.key)
    query = select(func.count()).where(
        RunRow.suite_id == suite_id,
        RunRow.started_at >= day - timedelta(days=1),
        RunRow.started_at < day + timedelta(days=1),
        RunRow.id.not_in(fresh),
    )
    return bool(conn.execute(query).scalar_one())


def _compact_day(conn: Connection, spec: RollupSpec, suite_id: int, day: datetime) -> None:
    """Sum the day's new runs into its day rollup: a new day from its runs' rows, or, for late
    runs of a day already compacted, the old day's rows plus theirs (the old day's runs may
    have dropped their own rows by then, so the old sums are carried, never recomputed)."""
    old = conn.execute(
        select(RollupDayRow.id).where(RollupDayRow.day == day, RollupDayRow.suite_id == suite_id)
    ).scalar_one_or_none()
    first = RollupRunRow.first_started_at
    of_day = (
        select(RollupRunRow.run_id)
        .join(RunRow, RunRow.id == RollupRunRow.run_id)
        .where(
            RollupRunRow.spec_key == spec.key,
            RollupRunRow.day_id.is_(None),
            RunRow.suite_id == suite_id,
            first >= day,
            first < day + timedelta(days=1),
        )
    )
    runs = [int(r) for r in conn.execute(of_day).scalars()]
    carried = (
        [
            int(r)
            for r in conn.execute(
                select(RollupRunRow.run_id).where(RollupRunRow.day_id == old)
            ).scalars()
        ]
        if old is not None
        else []
    )
    lo, hi = conn.execute(
        select(func.min(first), func.max(RollupRunRow.last_started_at)).where(
            RollupRunRow.run_id.in_([*runs, *carried])
        )
    ).one()
    values = {
        "spec_key": spec.key,
        "runs": len(runs) + len(carried),
        "first_started_at": _aware(lo),
        "last_started_at": _aware(hi),
        "built_at": utcnow(),
    }
    if old is None:
        day_id = conn.execute(
            insert(RollupDayRow)
            .values(day=day, suite_id=suite_id, **values)
            .returning(RollupDayRow.id)
        ).scalar_one()
        sources: ColumnElement[bool] = RollupRow.run_id.in_(runs)
        previous = None
    else:
        day_id = old
        conn.execute(update(RollupDayRow).where(RollupDayRow.id == old).values(**values))
        sources = or_(RollupRow.run_id.in_(runs), RollupRow.day_id == old)
        previous = conn.execute(select(func.max(RollupRow.id))).scalar_one()
    keys = (
        RollupRow.cohort_id,
        RollupRow.aggregation,
        RollupRow.metric,
        RollupRow.fingerprint,
        RollupRow.probe_key,
        RollupRow.bucket,
    )
    summed = (
        select(
            literal(day_id),
            *keys,
            func.sum(RollupRow.n),
            func.sum(RollupRow.k),
            func.sum(RollupRow.sessions),
            func.sum(RollupRow.flagged_sessions),
            func.min(RollupRow.first_started_at),
            func.max(RollupRow.last_started_at),
        )
        .where(sources)
        .group_by(*keys)
    )
    columns = [
        "day_id",
        "cohort_id",
        "aggregation",
        "metric",
        "fingerprint",
        "probe_key",
        "bucket",
        "n",
        "k",
        "sessions",
        "flagged_sessions",
        "first_started_at",
        "last_started_at",
    ]
    conn.execute(insert(RollupRow).from_select(columns, summed))
    conn.execute(
        update(RollupRunRow).where(RollupRunRow.run_id.in_([*runs, *carried])).values(day_id=day_id)
    )
    if previous is not None:  # the old day's rows, now summed into the new ones
        conn.execute(delete(RollupRow).where(RollupRow.day_id == old, RollupRow.id <= previous))
