"""Per-round trends summed per time bucket (a long window's sparkline and plot) equal the raw
per-round counts summed per bucket of their runs' start, whether read raw or from rollups."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from canary.records import ResultFilter
from canary.reports.model import TrendPoint
from canary.reports.queries import run_series
from canary.stats.summaries import summary_spec
from canary.store import Store, open_store
from canary.store.models import CohortRow, RunRow
from canary.store.reports import trend_rows
from canary.store.rollups import build_rollups, rollup_spec
from canary.store.scores import ScoreToSave, save_scores
from tests.store.helpers import T0, make_endpoints, make_suite, ok_record, round_counts

SPACING = timedelta(minutes=7)
RUNS = 12


@pytest.fixture
def store(any_db_url: str) -> Store:
    return open_store(any_db_url)


def _fill(store: Store) -> list[int]:
    """Rounds every 7 minutes, each run started at its first result (as the daemon's are)."""
    rng = random.Random(3)
    store.register_endpoints(make_endpoints())
    suite_id = store.register_suite(make_suite())
    runs = []
    for run in range(RUNS):
        run_id = store.start_run(suite_id)
        start = T0 + SPACING * run
        records = []
        for endpoint in ("gpu-a", "gpu-b"):
            for i in range(rng.randrange(5, 15)):
                failed = rng.random() < 0.2
                extra: dict[str, Any] = {"started_at": start + timedelta(seconds=i)}
                if failed:
                    extra |= {"error_kind": "timeout", "status_code": None, "output_text": None}
                records.append(ok_record(endpoint, i, **extra))
        ids = store.save_results(run_id, suite_id, records)
        flags = [rng.random() < 0.3 for _ in ids]
        save_scores(
            store,
            [
                ScoreToSave(
                    i, "script", rng.choice(("v1", "v2")), "unexpected_script", None, f, None
                )
                for i, f in zip(ids, flags, strict=True)
            ],
        )
        store.finish_run(run_id)
        with store.engine.begin() as conn:
            conn.execute(update(RunRow).where(RunRow.id == run_id).values(started_at=start))
        runs.append(run_id)
    return runs


def _cohorts(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return [int(i) for i in conn.execute(select(CohortRow.id)).scalars()]


def _run_starts(store: Store) -> dict[int, datetime]:
    with store.engine.connect() as conn:
        return {int(i): at for i, at in conn.execute(select(RunRow.id, RunRow.started_at))}


def _raw_buckets(
    store: Store, window: ResultFilter, bucket: timedelta
) -> dict[tuple[int, int, str], tuple[int, datetime, int, int]]:
    """(slot, cohort, metric) → (newest run, first at, n, k), from the raw per-round counts."""
    starts = _run_starts(store)
    rounds = round_counts(
        store, window, _cohorts(store), ["unexpected_script"], errors_as="error_rate"
    )
    out: dict[tuple[int, int, str], tuple[int, datetime, int, int]] = {}
    for r in rounds:
        slot = int(starts[r.run_id].timestamp()) // int(bucket.total_seconds())
        run, at, n, k = out.get((slot, r.cohort_id, r.metric), (r.run_id, r.at, 0, 0))
        out[(slot, r.cohort_id, r.metric)] = (max(run, r.run_id), min(at, r.at), n + r.n, k + r.k)
    return out


def _summed(rows: list[Any]) -> dict[tuple[int, int, str], tuple[int, datetime, int, int]]:
    out: dict[tuple[int, int, str], tuple[int, datetime, int, int]] = {}
    for slot, run_id, cohort_id, metric, at, n, k in rows:
        run, first, total_n, total_k = out.get((slot, cohort_id, metric), (run_id, at, 0, 0))
        out[(slot, cohort_id, metric)] = (
            max(run, run_id),
            min(first, at),
            total_n + n,
            total_k + k,
        )
    return out


def test_bucketed_rounds_equal_raw_rounds_summed_per_bucket(store: Store) -> None:
    _fill(store)
    spec = rollup_spec(summary_spec())
    build_rollups(store, spec)
    for window in (
        ResultFilter(),
        ResultFilter(since=T0 + SPACING * 3 + timedelta(seconds=2)),  # cuts a round
        ResultFilter(since=T0, until=T0 + SPACING * 8),
    ):
        for bucket in (timedelta(minutes=15), timedelta(hours=1)):
            raw = _raw_buckets(store, window, bucket)
            assert raw
            assert bucket > SPACING * 2 or len({slot for slot, _, _ in raw}) > 1
            args = (store, window, _cohorts(store), ["unexpected_script"])
            for use in (None, spec):
                rows = trend_rows(*args, errors_as="error_rate", spec=use, bucket=bucket)
                assert _summed(rows) == raw, (window, bucket, use)


def test_run_series_buckets_long_windows_and_keeps_short_ones_per_round(store: Store) -> None:
    _fill(store)
    build_rollups(store, rollup_spec(summary_spec()))
    key_of = {cohort_id: "all" for cohort_id in _cohorts(store)}  # both cohorts in one row
    window = ResultFilter(since=T0, until=T0 + SPACING * RUNS)
    metrics = ["unexpected_script", "error_rate"]
    rounds = round_counts(
        store, window, list(key_of), ["unexpected_script"], errors_as="error_rate"
    )
    per_round = run_series(store, key_of, metrics, window)
    for metric in metrics:
        mine = [r for r in rounds if r.metric == metric]
        expected = []
        for run_id in sorted({r.run_id for r in mine}):
            of_run = [r for r in mine if r.run_id == run_id]
            k, n = sum(r.k for r in of_run), sum(r.n for r in of_run)
            at = min(r.at for r in of_run)
            expected.append(TrendPoint(at=at, run_id=run_id, k=k, n=n, rate=k / n if n else 0.0))
        assert per_round[("all", metric)] == sorted(expected, key=lambda p: (p.at, p.run_id))
    # Four points at most: 84 minutes of rounds in buckets of 30 minutes (aligned to the hour).
    bucketed = run_series(store, key_of, metrics, window, max_points=4)
    starts = _run_starts(store)
    for metric in metrics:
        points = bucketed[("all", metric)]
        assert 1 < len(points) <= 4
        mine = [r for r in rounds if r.metric == metric]
        slots: dict[int, list[Any]] = {}
        for r in mine:
            slots.setdefault(int(starts[r.run_id].timestamp()) // 1800, []).append(r)
        expected = []
        for of_slot in slots.values():
            k, n = sum(r.k for r in of_slot), sum(r.n for r in of_slot)
            run_id, at = max(r.run_id for r in of_slot), min(r.at for r in of_slot)
            expected.append(TrendPoint(at=at, run_id=run_id, k=k, n=n, rate=k / n if n else 0.0))
        assert points == sorted(expected, key=lambda p: (p.at, p.run_id))
