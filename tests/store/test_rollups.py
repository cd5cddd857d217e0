"""Rollups answer exactly what the raw GROUP BYs answer: counts, sessions, bins and categories,
for any window, run set, label set or suite; and a change to a run's scores or results drops
its rollups in the same transaction, so a stale rollup is never read."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from canary.compare.aggregate import Aggregate, aggregate
from canary.records import ResultFilter, ResultRecord
from canary.stats import DEFAULT_POLICIES
from canary.stats.summaries import summary_spec
from canary.store import Store, open_store
from canary.store.aggregates import selection
from canary.store.cohorts import cohort_health
from canary.store.models import CohortRow, RollupRunRow
from canary.store.rollups import build_rollups, rollup_spec, stale_run_ids
from canary.store.scores import ScoreToSave, save_scores
from tests.store.helpers import T0, make_endpoints, make_suite, ok_record, round_counts

#: One metric of each aggregation: flag counts, declared bins, first-token categories.
METRICS = ("unexpected_script", "top1_agreement", "sampling_first_token")
POLICIES = {m: DEFAULT_POLICIES[m] for m in (*METRICS, "latency_ms")}
TOKENS = ("The", "A", "สวัสดี", "", "\u202e", "x" * 300)


def _record(
    rng: random.Random, endpoint: str, run: int, i: int, spacing: timedelta
) -> ResultRecord:
    failed = rng.random() < 0.1
    changes: dict[str, Any] = {
        "session_id": f"r{run}-s{i // 3}",  # three results per session, sessions per round
        "started_at": T0 + spacing * run + timedelta(seconds=i),
        "latency_ms": rng.lognormvariate(5, 1.5),
    }
    if failed:
        changes.update(error_kind="timeout", status_code=None, output_text=None, finish_reason=None)
    return ok_record(endpoint, i, **changes)


def _scores(rng: random.Random, ids: list[int]) -> list[ScoreToSave]:
    out = []
    for result_id in ids:
        fingerprint = rng.choice(("v1", "v2"))
        out.append(
            ScoreToSave(
                result_id,
                "script",
                fingerprint,
                "unexpected_script",
                None,
                rng.random() < 0.2,
                None,
            )
        )
        value = rng.choice((None, -0.5, 0.0, 0.37, 0.999, 1.0, 7.0, rng.random()))
        out.append(ScoreToSave(result_id, "topk", "t1", "top1_agreement", value, False, None))
        token = rng.choice(TOKENS)
        evidence = {"token": token} if rng.random() < 0.9 else {}
        out.append(
            ScoreToSave(result_id, "sampling", "s1", "sampling_first_token", None, False, evidence)
        )
    return out


@pytest.fixture
def store(any_db_url: str) -> Store:
    return open_store(any_db_url)


def _fill(
    store: Store, runs: int = 6, spacing: timedelta = timedelta(minutes=10)
) -> tuple[list[int], list[int]]:
    rng = random.Random(11)
    store.register_endpoints(make_endpoints())
    suites = [store.register_suite(make_suite()), store.register_suite(make_suite("other"))]
    run_ids = []
    for run in range(runs):
        suite_id = suites[run % 2]
        run_id = store.start_run(suite_id)
        records = [
            _record(rng, endpoint, run, i, spacing)
            for endpoint in ("gpu-a", "gpu-b")
            for i in range(rng.randrange(20, 40))
        ]
        ids = store.save_results(run_id, suite_id, records)
        save_scores(store, _scores(rng, ids))
        store.finish_run(run_id)
        run_ids.append(run_id)
    return run_ids, [suites[r % 2] for r in range(runs)]


def _same(store: Store, filt: ResultFilter, by: tuple[str, ...] = ("endpoint",)) -> Aggregate:
    raw = aggregate(store, filt, by, POLICIES, rollups=False)
    rolled = aggregate(store, filt, by, POLICIES, rollups=True)
    assert rolled.to_json() == raw.to_json(), filt
    return rolled


def test_rollups_equal_raw_aggregation_for_every_selection(store: Store) -> None:
    runs, _ = _fill(store)
    assert len(stale_run_ids(store.engine.connect(), rollup_spec(summary_spec()))) == len(runs)
    assert build_rollups(store, rollup_spec(summary_spec())) == len(runs)
    assert stale_run_ids(store.engine.connect(), rollup_spec(summary_spec())) == []
    whole = _same(store, ResultFilter())
    stats = whole.cohorts["endpoint=gpu-a"].metrics
    assert stats["unexpected_script"].to_json()["n"] > 0
    assert any(stats[m].to_json()["n"] for m in stats if m.startswith("sampling_first_token@"))
    for filt in (
        ResultFilter(run_ids=(runs[1], runs[4])),
        ResultFilter(labels={"pool": "b"}),
        ResultFilter(suites=("other",)),
        # Windows that cut runs in the middle, hold some whole, and hold none.
        ResultFilter(since=T0 + timedelta(minutes=10, seconds=15)),
        ResultFilter(until=T0 + timedelta(minutes=30, seconds=5)),
        ResultFilter(since=T0 + timedelta(minutes=20), until=T0 + timedelta(minutes=40)),
        ResultFilter(since=T0 + timedelta(days=3)),
    ):
        _same(store, filt)
    _same(store, ResultFilter(), by=())
    _same(store, ResultFilter(), by=("pool", "region"))


def test_changed_scores_and_late_results_drop_the_runs_rollups(store: Store) -> None:
    runs, suite_ids = _fill(store, runs=3)
    spec = rollup_spec(summary_spec())
    soon = T0 + timedelta(hours=2)  # per-run rollups only: the day is not over yet
    build_rollups(store, spec, now=soon)
    before = aggregate(store, ResultFilter(), ("endpoint",), POLICIES).to_json()
    # Re-scoring one run's results: flags flip. Its rollups go with the write.
    ids = [r.id for r in store.results_for_run(runs[0])]
    save_scores(
        store,
        [ScoreToSave(i, "script", "v1", "unexpected_script", None, True, None) for i in ids],
    )
    assert stale_run_ids(store.engine.connect(), spec) == [runs[0]]
    after = _same(store, ResultFilter())
    assert after.to_json() != before
    # A late result in a finished run.
    late = ok_record("gpu-a", 999, session_id="late", started_at=T0 + timedelta(minutes=1))
    store.save_results(runs[1], suite_ids[1], [late])
    assert set(stale_run_ids(store.engine.connect(), spec)) == {runs[0], runs[1]}
    _same(store, ResultFilter())
    build_rollups(store, spec, now=soon)
    _same(store, ResultFilter())


def test_only_runs_without_usable_rollups_are_read_raw(store: Store) -> None:
    runs, _ = _fill(store, runs=4)
    spec = rollup_spec(summary_spec())
    with selection(store, ResultFilter(), spec) as sel:
        assert sel.raw_runs == runs  # nothing built yet: all raw
    build_rollups(store, spec, now=T0 + timedelta(hours=2))  # the day is not over: no days
    with selection(store, ResultFilter(), spec) as sel:
        assert sel.raw_runs == []
    # A window through the middle of run 2 reads that run raw, the others from rollups (or not
    # at all: runs wholly outside it are neither).
    cut = ResultFilter(since=T0 + timedelta(minutes=20, seconds=10))
    with selection(store, cut, spec) as sel:
        assert sel.raw_runs == [runs[2]]
        assert sel.split is not None
        rolled = sel.split.rolled
        assert rolled == [runs[3]]
    # Rollups built under other bins are not used.
    other = type(spec)(bins={}, latency=spec.latency, categories=spec.categories)
    with selection(store, ResultFilter(), other) as sel:
        assert sel.raw_runs == runs


def test_per_round_counts_from_rollups_equal_raw(store: Store) -> None:
    _fill(store, runs=4)
    build_rollups(store, rollup_spec(summary_spec()))
    with store.engine.connect() as conn:
        cohorts = [int(i) for i in conn.execute(select(CohortRow.id)).scalars()]
    for window in (
        ResultFilter(),
        ResultFilter(since=T0 + timedelta(minutes=10, seconds=15)),
        ResultFilter(suites=("smoke",)),
    ):
        args = (store, window, cohorts, ["unexpected_script"])
        raw = round_counts(*args, errors_as="error_rate")
        rolled = round_counts(*args, errors_as="error_rate", spec=rollup_spec(summary_spec()))

        def key(r: Any) -> tuple[int, int, str]:
            return (r.run_id, r.cohort_id, r.metric)

        assert sorted(rolled, key=key) == sorted(raw, key=key)
        assert raw


def test_cohort_health_from_rollups_equals_raw(store: Store) -> None:
    _fill(store, runs=4)
    build_rollups(store, rollup_spec(summary_spec()))
    for since in (T0 - timedelta(days=1), T0 + timedelta(minutes=10, seconds=15)):
        raw = cohort_health(store, since=since)
        rolled = cohort_health(store, since=since, spec=rollup_spec(summary_spec()))
        assert [h.to_dict() for h in rolled] == [h.to_dict() for h in raw]
        assert sum(h.results for h in raw) > 0


def test_whole_days_are_read_from_day_rollups_and_equal_raw(store: Store) -> None:
    # Runs every 7 hours over about four days, of two suites: windows that hold whole days,
    # cut days and cut runs.
    runs, _ = _fill(store, runs=14, spacing=timedelta(hours=7))
    build_rollups(store, rollup_spec(summary_spec()))
    with selection(store, ResultFilter(), rollup_spec(summary_spec())) as sel:
        assert sel.split is not None
        days, rolled = sel.split.days + sel.split.weeks, sel.split.rolled
        assert days, "whole past days (and weeks) are compacted"
        assert len(rolled) < len(runs), "runs of compacted days are read through their day"
    day0 = T0.replace(hour=0, minute=0, second=0, microsecond=0)
    for filt in (
        ResultFilter(),
        ResultFilter(since=day0 + timedelta(days=1)),
        ResultFilter(since=day0 + timedelta(days=1, hours=5), until=day0 + timedelta(days=3)),
        ResultFilter(suites=("smoke",), since=day0 + timedelta(days=2)),
        ResultFilter(labels={"pool": "a"}, until=day0 + timedelta(days=2, seconds=30)),
    ):
        _same(store, filt)
    # Re-scoring a run of a compacted day drops that day too; the answer stays the raw one.
    ids = [r.id for r in store.results_for_run(runs[5])]
    save_scores(
        store,
        [ScoreToSave(i, "script", "v1", "unexpected_script", None, True, None) for i in ids],
    )
    _same(store, ResultFilter())
    build_rollups(store, rollup_spec(summary_spec()))
    _same(store, ResultFilter())
    health = cohort_health(store, since=day0, spec=rollup_spec(summary_spec()))
    assert [h.to_dict() for h in health] == [h.to_dict() for h in cohort_health(store, since=day0)]


def test_old_rounds_are_read_through_their_day_or_raw(store: Store) -> None:
    runs, _ = _fill(store, runs=10, spacing=timedelta(hours=7))
    spec = rollup_spec(summary_spec())
    build_rollups(store, spec, now=T0 + timedelta(days=40))  # every run row is past keeping
    day0 = T0.replace(hour=0, minute=0, second=0, microsecond=0)
    cut = ResultFilter(since=day0 + timedelta(days=1, hours=3))
    with selection(store, cut, spec) as sel:
        assert sel.split is not None
        assert sel.split.rolled == []
        assert sel.raw_runs, "a cut day whose run rows are gone is read raw"
    for filt in (ResultFilter(), cut, ResultFilter(suites=("other",))):
        _same(store, filt)
    with store.engine.connect() as conn:
        cohorts = [int(i) for i in conn.execute(select(CohortRow.id)).scalars()]
    raw = round_counts(store, cut, cohorts, ["unexpected_script"])
    rolled = round_counts(store, cut, cohorts, ["unexpected_script"], spec=spec)
    assert sorted(rolled, key=repr) == sorted(raw, key=repr) and raw
    # Re-scoring an old round: its day and its day's dropped runs are built again.
    ids = [r.id for r in store.results_for_run(runs[3])]
    save_scores(
        store,
        [ScoreToSave(i, "script", "v2", "unexpected_script", None, False, None) for i in ids],
    )
    assert runs[3] in stale_run_ids(store.engine.connect(), spec)
    build_rollups(store, spec, now=T0 + timedelta(days=40))
    assert stale_run_ids(store.engine.connect(), spec) == []
    _same(store, ResultFilter())


def test_a_late_run_of_a_compacted_day_is_added_to_the_day(store: Store) -> None:
    # Two rounds, built and compacted long after, so their own rows are gone; then a third
    # round of the same day lands: the day must carry the first two, not recompute them.
    _, suite_ids = _fill(store, runs=2)
    later = T0 + timedelta(days=40)
    spec = rollup_spec(summary_spec())
    build_rollups(store, spec, now=later)
    rng = random.Random(3)
    run_id = store.start_run(suite_ids[0])
    records = [_record(rng, "gpu-a", 5, i, timedelta(minutes=10)) for i in range(25)]
    ids = store.save_results(run_id, suite_ids[0], records)
    save_scores(store, _scores(rng, ids))
    store.finish_run(run_id)
    build_rollups(store, spec, now=later)
    assert stale_run_ids(store.engine.connect(), spec) == []
    with selection(store, ResultFilter(), spec) as sel:
        assert sel.split is not None and sel.raw_runs == []
        assert sel.split.days or sel.split.weeks
    _same(store, ResultFilter())
    _same(store, ResultFilter(labels={"pool": "a"}))


def test_run_summaries_count_from_rollups_as_from_results(store: Store) -> None:
    runs, _ = _fill(store, runs=3)

    def counts() -> list[tuple[int, int, list[str]]]:
        return [(s.n_results, s.n_errors, s.endpoints) for s in map(store.get_run, runs)]

    from_results = counts()
    assert all(n for n, _, _ in from_results) and any(e for _, e, _ in from_results)
    build_rollups(store, rollup_spec(summary_spec()))
    assert counts() == from_results
    with store.engine.begin() as conn:  # rolled up before revision 0008: errors unknown
        conn.execute(update(RollupRunRow).values(errors=None))
    assert counts() == from_results
