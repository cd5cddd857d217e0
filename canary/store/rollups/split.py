"""Which runs of a selection the rollups answer for (a run's rows, or its day's), and
which are read raw."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    or_,
    select,
)

from canary.records import ResultFilter
from canary.store.models import (
    RollupDayRow,
    RollupRow,
    RollupRunRow,
    RunRow,
    SuiteRow,
)
from canary.store.rollup_marks import WEEK_HOURS, week_start
from canary.store.rollups.days import DAY, HOUR
from canary.store.rollups.spec import RollupSpec
from canary.store.rollups.times import aware


@dataclass(frozen=True)
class RunSplit:
    """The runs of a selection: those whose rollups answer for them, and those read raw."""

    rolled: list[int]
    """Runs with fresh rollup rows wholly inside the window, not summed by one of `days`."""
    raw_runs: list[int]
    """Runs with no fresh rollup, or cut by the window (runs wholly outside it are neither)."""
    days: list[int] = field(default_factory=list)
    """Compacted days (ids) wholly inside the window and not of one of `weeks`, read instead
    of their runs."""
    hours: list[int] = field(default_factory=list)
    """Compacted hours (ids) wholly inside the window and not of one of `days` or `weeks`,
    read instead of their runs."""
    weeks: list[int] = field(default_factory=list)
    """Compacted weeks (ids) wholly inside the window, read instead of their days."""

    def parts(self) -> list[ColumnElement[bool]]:
        """WHERE clauses, one per index-sized part, whose `RollupRow`s together answer for the
        rolled-up share of the selection (a part is read by the `(aggregation, metric, run_id)`
        or `(aggregation, metric, day_id)` index; an OR of both would scan the table)."""
        out: list[ColumnElement[bool]] = []
        parts = (
            (RollupRow.run_id, self.rolled),
            (RollupRow.day_id, self.weeks),
            (RollupRow.day_id, self.days),
            (RollupRow.day_id, self.hours),
        )
        for column, ids in parts:
            for start in range(0, len(ids), PART):
                out.append(column.in_(ids[start : start + PART]))
        return out


#: Ids per IN list (below every driver's bound-parameter limit).
PART = 5000


def split_runs(
    conn: Connection, filt: ResultFilter, spec: RollupSpec, *, days: bool = True
) -> RunSplit:
    """Which of the runs ``filt`` may select are read from rollups (a run's, or, when ``days``,
    its day's or hour's if the whole period is in the window), and which raw.

    Runs are few next to results (one per round), so the raw list is read here: in steady
    state it holds only the rounds not yet scored and the one or two a window cuts.
    """
    runs: list[ColumnElement[bool]] = []
    if filt.run_ids:
        runs.append(RunRow.id.in_(list(filt.run_ids)))
    if filt.suites:
        of_suites = select(SuiteRow.id).where(SuiteRow.name.in_(list(filt.suites)))
        runs.append(RunRow.suite_id.in_(of_suites))
    first, last = RollupRunRow.first_started_at, RollupRunRow.last_started_at
    inside: list[ColumnElement[bool]] = [first.is_not(None)]
    outside: list[ColumnElement[bool]] = [first.is_(None)]
    if filt.since is not None:
        inside.append(first >= filt.since)
        outside.append(last < filt.since)
    if filt.until is not None:
        inside.append(last < filt.until)
        outside.append(first >= filt.until)
    candidates = select(RunRow.id).where(*runs)
    fresh = [RollupRunRow.spec_key == spec.key, RollupRunRow.run_id.in_(candidates)]
    use_periods = days and not filt.run_ids
    periods = _usable_periods(conn, filt, spec) if use_periods else Periods()
    kept = RollupRunRow.run_rows.is_(True)
    by_period: list[ColumnElement[bool]] = []
    not_by_period: list[ColumnElement[bool]] = []
    all_days = sorted([*periods.days, *periods.covered])  # a run of a week's day: the week
    for link, ids in ((RollupRunRow.day_id, all_days), (RollupRunRow.hour_id, periods.hours)):
        if ids:
            by_period.append(link.in_(ids))
            not_by_period.append(or_(link.is_(None), link.not_in(ids)))
    answered = or_(or_(*outside), and_(*inside, or_(kept, *by_period)))
    settled = select(RollupRunRow.run_id).where(*fresh, answered)
    raw = select(RunRow.id).where(*runs, RunRow.id.not_in(settled)).order_by(RunRow.id)
    raw_runs = [int(r) for r in conn.execute(raw).scalars()]
    rolled = select(RollupRunRow.run_id).where(*fresh, *inside, kept, *not_by_period)
    return RunSplit(
        [int(r) for r in conn.execute(rolled.order_by(RollupRunRow.run_id)).scalars()],
        raw_runs,
        periods.days,
        periods.hours,
        periods.weeks,
    )


@dataclass(frozen=True)
class Periods:
    """The compacted periods wholly inside a window (ids), each read only where no longer
    period that holds it is."""

    weeks: list[int] = field(default_factory=list)
    days: list[int] = field(default_factory=list)
    """Days not inside one of `weeks`."""
    covered: list[int] = field(default_factory=list)
    """Days inside one of `weeks` (their runs are answered by the week)."""
    hours: list[int] = field(default_factory=list)
    """Hours not inside one of the days or weeks."""


def _usable_periods(conn: Connection, filt: ResultFilter, spec: RollupSpec) -> Periods:
    """The week, day and hour rollups under ``spec`` of the filter's suites wholly inside its
    window."""
    found: dict[int, list[tuple[int, int, datetime]]] = {}
    query = _usable_days(filt, spec).add_columns(
        RollupDayRow.suite_id, RollupDayRow.day, RollupDayRow.hours
    )
    for period_id, suite_id, start, length in conn.execute(query):
        at = aware(start)
        assert at is not None
        found.setdefault(int(length), []).append((int(period_id), int(suite_id), at))
    weeks = {(s, at) for _, s, at in found.get(WEEK_HOURS, [])}
    days: list[int] = []
    covered: list[int] = []
    for day_id, suite_id, at in found.get(DAY.hours, []):
        (covered if (suite_id, week_start(at)) in weeks else days).append(day_id)
    whole = {(s, at) for _, s, at in found.get(DAY.hours, [])}
    hours = [h for h, s, at in found.get(HOUR.hours, []) if (s, DAY.start(at)) not in whole]
    return Periods(
        sorted(i for i, _, _ in found.get(WEEK_HOURS, [])),
        sorted(days),
        sorted(covered),
        sorted(hours),
    )


def _usable_days(filt: ResultFilter, spec: RollupSpec) -> Select[Any]:
    """Week, day and hour rollups under ``spec`` of the filter's suites, wholly inside its
    window."""
    where: list[ColumnElement[bool]] = [
        RollupDayRow.spec_key == spec.key,
        RollupDayRow.first_started_at.is_not(None),
    ]
    if filt.suites:
        of_suites = select(SuiteRow.id).where(SuiteRow.name.in_(list(filt.suites)))
        where.append(RollupDayRow.suite_id.in_(of_suites))
    if filt.since is not None:
        where.append(RollupDayRow.first_started_at >= filt.since)
    if filt.until is not None:
        where.append(RollupDayRow.last_started_at < filt.until)
    return select(RollupDayRow.id).where(*where)
