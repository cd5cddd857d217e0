"""Hour and week rollups: a window that cuts a recent day reads that day's whole hours (not its
rounds), a long window reads whole weeks (not their days), and both still answer exactly what
the raw GROUP BYs answer; hours and weeks follow their runs' changes, and hours are dropped with
their runs' own rows."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from canary.records import ResultFilter
from canary.stats.summaries import summary_spec
from canary.store import Store, downgrade, make_engine, open_store, upgrade
from canary.store.aggregates import selection
from canary.store.models import RollupDayRow, RollupRunRow, RunRow
from canary.store.rollup_marks import week_start
from canary.store.rollups import KEEP_RUN_ROLLUPS, build_rollups, rollup_spec, stale_run_ids
from canary.store.scores import ScoreToSave, save_scores
from tests.store.helpers import T0
from tests.store.test_rollups import _fill, _record, _same, _scores

SPACING = timedelta(minutes=25)  # 20 rounds: about eight hours of one day, two or three an hour


@pytest.fixture
def store(any_db_url: str) -> Store:
    return open_store(any_db_url)


def _periods(store: Store) -> dict[int, int]:
    """Hours (1 or 24) → how many period rollups of that length are stored."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(RollupDayRow.hours, func.count()).group_by(RollupDayRow.hours)
        ).all()
    return {int(h): int(n) for h, n in rows}


def test_a_cut_day_is_read_by_the_hour_and_equals_raw(store: Store) -> None:
    _fill(store, runs=20, spacing=SPACING)
    spec = rollup_spec(summary_spec())
    build_rollups(store, spec, now=T0 + timedelta(days=1))
    periods = _periods(store)
    assert periods.get(24) == 2 and periods.get(1, 0) >= 8  # a day and its hours, per suite
    cut = ResultFilter(since=T0 + timedelta(hours=2, minutes=5))
    with selection(store, cut, spec) as sel:
        assert sel.split is not None
        assert sel.split.hours and not sel.split.days
        assert len(sel.split.rolled) < 4, "only the rounds of the cut hour are read one by one"
    day0 = T0.replace(hour=0, minute=0, second=0, microsecond=0)
    for filt in (
        ResultFilter(),  # the whole day: read as the day, never as its hours as well
        cut,
        ResultFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=5, minutes=1)),
        ResultFilter(suites=("other",), until=T0 + timedelta(hours=6)),
        ResultFilter(labels={"pool": "a"}, since=T0 + timedelta(minutes=70)),
        ResultFilter(since=day0, until=day0 + timedelta(days=1)),
    ):
        _same(store, filt)
    with selection(store, ResultFilter(), spec) as sel:
        assert sel.split is not None and sel.split.days and not sel.split.hours


def test_hours_of_a_day_not_yet_over_answer_for_it(store: Store) -> None:
    _fill(store, runs=20, spacing=SPACING)
    spec = rollup_spec(summary_spec())
    now = T0 + timedelta(hours=9)  # the day is not over: hours only
    build_rollups(store, spec, now=now)
    assert 24 not in _periods(store)
    with selection(store, ResultFilter(), spec) as sel:
        assert sel.split is not None and sel.split.hours and not sel.split.days
    _same(store, ResultFilter())
    _same(store, ResultFilter(since=T0 + timedelta(hours=3, minutes=30)))


def test_a_rescored_round_drops_its_hour_and_a_late_round_joins_it(store: Store) -> None:
    runs, suites = _fill(store, runs=20, spacing=SPACING)
    spec = rollup_spec(summary_spec())
    now = T0 + timedelta(hours=12)
    build_rollups(store, spec, now=now)
    hours_before = _periods(store)[1]
    ids = [r.id for r in store.results_for_run(runs[6])]
    save_scores(
        store, [ScoreToSave(i, "script", "v1", "unexpected_script", None, True, None) for i in ids]
    )
    assert _periods(store)[1] == hours_before - 1
    _same(store, ResultFilter(since=T0 + timedelta(hours=1, minutes=5)))
    build_rollups(store, spec, now=now)
    assert _periods(store)[1] == hours_before and stale_run_ids(store.engine.connect(), spec) == []
    # A late round whose results started inside an hour already compacted joins that hour.
    rng = random.Random(7)
    run_id = store.start_run(suites[0])
    records = [  # run 3's hour, sessions of its own
        replace(_record(rng, "gpu-a", 3, i, SPACING), session_id=f"late-{i}") for i in range(30)
    ]
    save_scores(store, _scores(rng, store.save_results(run_id, suites[0], records)))
    store.finish_run(run_id)
    build_rollups(store, spec, now=now)
    assert _periods(store)[1] == hours_before
    with store.engine.connect() as conn:
        assert conn.execute(
            select(RollupRunRow.hour_id).where(RollupRunRow.run_id == run_id)
        ).scalar_one()
    for filt in (ResultFilter(since=T0 + timedelta(hours=1, minutes=5)), ResultFilter()):
        _same(store, filt)


def test_hours_are_dropped_with_their_rounds_own_rows(store: Store) -> None:
    _fill(store, runs=20, spacing=SPACING)
    spec = rollup_spec(summary_spec())
    build_rollups(store, spec, now=T0 + timedelta(days=1))
    assert _periods(store).get(1)
    build_rollups(store, spec, now=T0 + KEEP_RUN_ROLLUPS + timedelta(days=2))
    assert _periods(store) == {24: 2, 168: 2}  # hours gone; the day's week is compacted
    with store.engine.connect() as conn:
        linked = conn.execute(select(func.count()).where(RollupRunRow.hour_id.is_not(None)))
        assert linked.scalar_one() == 0
    build_rollups(store, spec, now=T0 + KEEP_RUN_ROLLUPS + timedelta(days=2))
    assert _periods(store) == {24: 2, 168: 2}, "old rounds are not summed into hours again"
    for filt in (ResultFilter(), ResultFilter(since=T0 + timedelta(hours=2, minutes=5))):
        _same(store, filt)


def test_downgrade_drops_the_hours_and_keeps_days_and_runs(any_db_url: str) -> None:
    store = open_store(any_db_url)
    _fill(store, runs=20, spacing=SPACING)
    spec = rollup_spec(summary_spec())
    build_rollups(store, spec, now=T0 + timedelta(days=1))
    expected = _same(store, ResultFilter(since=T0 + timedelta(hours=2, minutes=5))).to_json()
    store.close()
    downgrade(any_db_url, "0007")
    engine = make_engine(any_db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rollup_days")).scalar_one() == 2
        orphans = "SELECT count(*) FROM rollups WHERE day_id NOT IN (SELECT id FROM rollup_days)"
        assert conn.execute(text(orphans)).scalar_one() == 0
    engine.dispose()
    upgrade(any_db_url)
    store = open_store(any_db_url)
    assert _periods(store) == {24: 2}
    again = _same(store, ResultFilter(since=T0 + timedelta(hours=2, minutes=5)))
    assert again.to_json() == expected
    store.close()


WEEKLY = timedelta(hours=9)  # 24 rounds over nine days from a Friday: parts of two weeks


def test_whole_weeks_are_read_instead_of_their_days_and_equal_raw(store: Store) -> None:
    runs, suites = _fill(store, runs=24, spacing=WEEKLY)
    spec = rollup_spec(summary_spec())
    later = T0 + timedelta(days=30)
    build_rollups(store, spec, now=later)
    assert _periods(store).get(168) == 4  # two weeks of each of the two suites
    with selection(store, ResultFilter(), spec) as sel:
        assert sel.split is not None
        assert sel.split.weeks and not sel.split.days and not sel.split.rolled
    monday = week_start(T0) + timedelta(days=7)
    for filt in (
        ResultFilter(),
        ResultFilter(since=monday),  # the second week whole
        ResultFilter(since=monday + timedelta(days=1, hours=6)),  # its days, not the week
        ResultFilter(suites=("other",), until=monday),
        ResultFilter(labels={"pool": "b"}, since=T0 + timedelta(hours=20)),
    ):
        _same(store, filt)
    # Re-scoring a round drops its day and that day's week; the answer stays the raw one.
    ids = [r.id for r in store.results_for_run(runs[13])]
    save_scores(
        store, [ScoreToSave(i, "script", "v2", "unexpected_script", None, True, None) for i in ids]
    )
    assert _periods(store)[168] == 3
    _same(store, ResultFilter())
    build_rollups(store, spec, now=later)
    assert _periods(store)[168] == 4
    _same(store, ResultFilter())
    # A late round of a compacted week's day joins its day, and the week is summed again.
    rng = random.Random(9)
    run_id = store.start_run(suites[2])
    records = [
        replace(_record(rng, "gpu-b", 2, i, WEEKLY), session_id=f"late-{i}") for i in range(20)
    ]
    save_scores(store, _scores(rng, store.save_results(run_id, suites[2], records)))
    store.finish_run(run_id)
    build_rollups(store, spec, now=later)
    assert _periods(store)[168] == 4 and stale_run_ids(store.engine.connect(), spec) == []
    for filt in (ResultFilter(), ResultFilter(until=monday)):
        _same(store, filt)


def test_a_week_waits_for_every_round_of_it(store: Store) -> None:
    _, suites = _fill(store, runs=24, spacing=WEEKLY)
    rng = random.Random(4)
    running = store.start_run(suites[0])  # a round of the first week still in flight
    records = [
        replace(_record(rng, "gpu-a", 4, i, WEEKLY), session_id=f"open-{i}") for i in range(10)
    ]
    store.save_results(running, suites[0], records)
    with store.engine.begin() as conn:  # it started when its results did, as rounds do
        conn.execute(
            update(RunRow).where(RunRow.id == running).values(started_at=records[0].started_at)
        )
    spec = rollup_spec(summary_spec())
    build_rollups(store, spec, now=T0 + timedelta(days=30))
    with store.engine.connect() as conn:
        weeks = conn.execute(
            select(RollupDayRow.suite_id, RollupDayRow.day).where(RollupDayRow.hours == 168)
        ).all()
    first_week = week_start(T0)
    assert (suites[0], first_week) not in {(int(s), d) for s, d in weeks}
    assert (suites[1], first_week) in {(int(s), d) for s, d in weeks}
    _same(store, ResultFilter())
