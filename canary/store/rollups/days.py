"""Compacting whole UTC hours and days of a suite's run rollups into period rollups.

Days answer for a year; hours answer for the two days a window like `--since 7d` cuts, which
would otherwise be read as up to 288 rounds each. Both live in `rollup_days` (``hours`` is 24
or 1) and are summed from the runs' own rows.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from sqlalchemy.orm import InstrumentedAttribute

from canary.store.models import (
    RollupDayRow,
    RollupRow,
    RollupRunRow,
    RunRow,
    utcnow,
)
from canary.store.rollup_marks import drop_periods, drop_weeks_of_days
from canary.store.rollups.spec import RollupSpec
from canary.store.rollups.times import aware as _aware

#: A day is compacted once it has been over this long: late rounds of it have landed.
SETTLE = timedelta(hours=1)
#: An hour is compacted once it has been over this long (a round takes seconds to a minute).
HOUR_SETTLE = timedelta(minutes=10)
#: Per-run rollups (and the hours summed from them) are kept this long: per-round trends in
#: reports, and cut days read by the hour. Older rounds are read through their day, or raw
#: when a window cuts the day.
KEEP_RUN_ROLLUPS = timedelta(days=14)


@dataclass(frozen=True)
class Period:
    """A length of time runs are summed over, and the `rollup_runs` column naming the sum."""

    hours: int
    settle: timedelta
    link: InstrumentedAttribute[int | None]

    @property
    def length(self) -> timedelta:
        return timedelta(hours=self.hours)

    def start(self, at: datetime) -> datetime:
        """The start of the period ``at`` lies in (UTC)."""
        hour = at.replace(minute=0, second=0, microsecond=0)
        return hour.replace(hour=0) if self.hours == 24 else hour


HOUR = Period(1, HOUR_SETTLE, RollupRunRow.hour_id)
DAY = Period(24, SETTLE, RollupRunRow.day_id)


def compact_days_on(conn: Connection, spec: RollupSpec, *, now: datetime | None = None) -> int:
    """Sum whole UTC hours (of the last `KEEP_RUN_ROLLUPS`) and days of each suite's rolled-up
    runs into period rollups; returns the periods compacted. A period is compacted when it
    ended its `Period.settle` ago and every run of its suite that started in or just before it
    has fresh rollups (none is running or unscored)."""
    now = now or utcnow()
    done = 0
    for period in (HOUR, DAY):
        done += _compact(conn, spec, period, now)
    _drop_old_run_rows(conn, now - KEEP_RUN_ROLLUPS)
    return done


def _compact(conn: Connection, spec: RollupSpec, period: Period, now: datetime) -> int:
    where = [
        RollupRunRow.spec_key == spec.key,
        period.link.is_(None),
        RollupRunRow.first_started_at.is_not(None),
    ]
    if period is HOUR:  # only runs that still have their own rows, and not for ever
        where += [
            RollupRunRow.first_started_at >= now - KEEP_RUN_ROLLUPS,
            RollupRunRow.run_rows.is_(True),
        ]
    rows = conn.execute(
        select(RollupRunRow.run_id, RunRow.suite_id, RollupRunRow.first_started_at)
        .join(RunRow, RunRow.id == RollupRunRow.run_id)
        .where(*where)
    ).all()
    pending: set[tuple[datetime, int]] = set()
    for _, suite_id, first in rows:
        at = _aware(first)
        assert at is not None
        start = period.start(at)
        if start + period.length + period.settle <= now:
            pending.add((start, int(suite_id)))
    done = 0
    for start, suite_id in sorted(pending):
        if _has_unrolled_runs(conn, spec, suite_id, start, period):
            continue
        _compact_period(conn, spec, suite_id, start, period)
        done += 1
    return done


def _drop_old_run_rows(conn: Connection, before: datetime) -> None:
    """Drop the run rows of compacted runs older than ``before`` (their day answers for them)
    and the hours summed from them."""
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
    old_hours = select(RollupDayRow.id).where(
        RollupDayRow.hours == HOUR.hours, RollupDayRow.day < before - HOUR.length
    )
    drop_periods(conn, [int(h) for h in conn.execute(old_hours).scalars()])


def _has_unrolled_runs(
    conn: Connection, spec: RollupSpec, suite_id: int, start: datetime, period: Period
) -> bool:
    """Whether a run of the suite that may hold results of the period has no fresh rollups."""
    fresh = select(RollupRunRow.run_id).where(RollupRunRow.spec_key == spec.key)
    query = select(func.count()).where(
        RunRow.suite_id == suite_id,
        RunRow.started_at >= start - period.length,
        RunRow.started_at < start + period.length,
        RunRow.id.not_in(fresh),
    )
    return bool(conn.execute(query).scalar_one())


def _compact_period(
    conn: Connection, spec: RollupSpec, suite_id: int, start: datetime, period: Period
) -> None:
    """Sum the period's new runs into its rollup: a new period from its runs' rows, or, for
    late runs of a period already compacted, the old period's rows plus theirs (the old day's
    runs may have dropped their own rows by then, so the old sums are carried, never
    recomputed)."""
    old = conn.execute(
        select(RollupDayRow.id).where(
            RollupDayRow.day == start,
            RollupDayRow.suite_id == suite_id,
            RollupDayRow.hours == period.hours,
        )
    ).scalar_one_or_none()
    first = RollupRunRow.first_started_at
    of_period = (
        select(RollupRunRow.run_id)
        .join(RunRow, RunRow.id == RollupRunRow.run_id)
        .where(
            RollupRunRow.spec_key == spec.key,
            period.link.is_(None),
            RollupRunRow.run_rows.is_(True),
            RunRow.suite_id == suite_id,
            first >= start,
            first < start + period.length,
        )
    )
    runs = [int(r) for r in conn.execute(of_period).scalars()]
    carried = (
        [
            int(r)
            for r in conn.execute(select(RollupRunRow.run_id).where(period.link == old)).scalars()
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
        period_id = conn.execute(
            insert(RollupDayRow)
            .values(day=start, suite_id=suite_id, hours=period.hours, **values)
            .returning(RollupDayRow.id)
        ).scalar_one()
        sources: ColumnElement[bool] = RollupRow.run_id.in_(runs)
        previous = None
    else:
        period_id = old
        conn.execute(update(RollupDayRow).where(RollupDayRow.id == old).values(**values))
        sources = or_(RollupRow.run_id.in_(runs), RollupRow.day_id == old)
        previous = conn.execute(select(func.max(RollupRow.id))).scalar_one()
    sum_into(conn, period_id, sources)
    if period is DAY:  # a week that sums this day (without these runs) is no longer its sum
        drop_weeks_of_days(conn, [period_id])
    linked = RollupRunRow.run_id.in_([*runs, *carried])
    conn.execute(update(RollupRunRow).where(linked).values({period.link.key: period_id}))
    if previous is not None:  # the old period's rows, now summed into the new ones
        conn.execute(delete(RollupRow).where(RollupRow.day_id == old, RollupRow.id <= previous))


def sum_into(conn: Connection, period_id: int, sources: ColumnElement[bool]) -> None:
    """Insert, as period ``period_id``'s rows, the sums of the rollup rows ``sources`` selects
    per cohort × aggregation × metric × detector version × probe × bucket."""
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
            literal(period_id),
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
    columns = ["day_id", *(k.key for k in keys), "n", "k", "sessions", "flagged_sessions",
               "first_started_at", "last_started_at"]  # fmt: skip
    conn.execute(insert(RollupRow).from_select(columns, summed))
