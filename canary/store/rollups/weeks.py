"""Compacting whole weeks of a suite's day rollups into week rollups.

A year read as 365 days per suite is 365 × cohorts × buckets rows; as 52 weeks it is a
seventh of that, and of the pages a cold cache must fetch. A week (Monday 00:00 UTC, 168
hours, in `rollup_days` with ``hours`` = 168) is the sum of its suite's day rollups, built
once every run of the week is in a day, and dropped whenever one of its days changes
(`canary.store.rollup_marks.drop_weeks_of_days`), so it always equals its days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, func, insert, or_, select

from canary.store.models import RollupDayRow, RollupRow, RollupRunRow, RunRow, utcnow
from canary.store.rollup_marks import WEEK_HOURS, week_start
from canary.store.rollups.days import SETTLE, sum_into
from canary.store.rollups.spec import RollupSpec
from canary.store.rollups.times import aware

WEEK = timedelta(hours=WEEK_HOURS)


def compact_weeks_on(conn: Connection, spec: RollupSpec, *, now: datetime) -> int:
    """Sum each suite's whole weeks (ended `SETTLE` ago) of day rollups into week rollups;
    returns the weeks built."""
    built = {
        (int(s), aware(d))
        for s, d in conn.execute(
            select(RollupDayRow.suite_id, RollupDayRow.day).where(
                RollupDayRow.hours == WEEK_HOURS, RollupDayRow.spec_key == spec.key
            )
        )
    }
    pending: dict[tuple[int, datetime], list[int]] = {}
    for day_id, suite_id, day in conn.execute(
        select(RollupDayRow.id, RollupDayRow.suite_id, RollupDayRow.day).where(
            RollupDayRow.hours == 24, RollupDayRow.spec_key == spec.key
        )
    ):
        at = aware(day)
        assert at is not None
        key = (int(suite_id), week_start(at))
        if key not in built and key[1] + WEEK + SETTLE <= now:
            pending.setdefault(key, []).append(int(day_id))
    done = 0
    for (suite_id, start), days in sorted(pending.items()):
        if _has_runs_outside_days(conn, spec, suite_id, start):
            continue
        _build_week(conn, spec, suite_id, start, days)
        done += 1
    return done


def _has_runs_outside_days(
    conn: Connection, spec: RollupSpec, suite_id: int, start: datetime
) -> bool:
    """Whether a run of the suite whose results may start in the week is not yet summed by a
    day (not scored, not rolled up, or its day not compacted)."""
    first = RollupRunRow.first_started_at
    in_a_day_or_elsewhere = select(RollupRunRow.run_id).where(
        RollupRunRow.spec_key == spec.key,
        or_(
            RollupRunRow.day_id.is_not(None),
            first.is_(None),
            first < start,
            first >= start + WEEK,
        ),
    )
    query = select(func.count()).where(
        RunRow.suite_id == suite_id,
        RunRow.started_at >= start - timedelta(days=1),
        RunRow.started_at < start + WEEK,
        RunRow.id.not_in(in_a_day_or_elsewhere),
    )
    return bool(conn.execute(query).scalar_one())


def _build_week(
    conn: Connection, spec: RollupSpec, suite_id: int, start: datetime, days: list[int]
) -> None:
    runs, lo, hi = conn.execute(
        select(
            func.sum(RollupDayRow.runs),
            func.min(RollupDayRow.first_started_at),
            func.max(RollupDayRow.last_started_at),
        ).where(RollupDayRow.id.in_(days))
    ).one()
    week_id = conn.execute(
        insert(RollupDayRow)
        .values(
            day=start,
            suite_id=suite_id,
            hours=WEEK_HOURS,
            spec_key=spec.key,
            runs=int(runs or 0),
            first_started_at=aware(lo),
            last_started_at=aware(hi),
            built_at=utcnow(),
        )
        .returning(RollupDayRow.id)
    ).scalar_one()
    sum_into(conn, week_id, RollupRow.day_id.in_(days))
