"""Monthly partitions (PostgreSQL) and whole-row retention (both backends).

The data spans three calendar months so partition boundaries are exercised; retention is run
at a fixed `now` so which months are old does not depend on today's date.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select, text
from typer.testing import CliRunner

from canary.cli.main import app
from canary.errors import StoreError
from canary.records import ResultFilter
from canary.scoring import score_stored
from canary.store import Store, downgrade, make_engine, open_store, upgrade
from canary.store.models import AlertRow, ResultRow, ScoreRow
from canary.store.retention import RetentionPolicy, prune
from canary.store.rollup_models import RollupRow
from canary.store.scores import ScoreToSave, save_scores
from tests.store.helpers import make_endpoints, make_suite, ok_record

MONTHS = [datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 10, tzinfo=UTC),
          datetime(2026, 3, 5, tzinfo=UTC)]  # fmt: skip
#: Retention at this time with 60 days keeps results from 2026-03-02 on: March stays.
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def fill(store: Store, *, finish: bool = True) -> list[int]:
    """Four results in each month, scored (so rolled up when ``finish``)."""
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())
    ids = []
    for m, start in enumerate(MONTHS):
        run_id = store.start_run(suite_id)
        records = [
            ok_record("gpu-a", 10 * m + i, started_at=start + timedelta(hours=i)) for i in range(4)
        ]
        ids += store.save_results(run_id, suite_id, records)
        if finish:
            store.finish_run(run_id)
        score_stored(store, ResultFilter(run_ids=(run_id,)), reference=False)
    return ids


def contents(store: Store) -> tuple[list[Any], list[Any]]:
    with store.engine.connect() as conn:
        results = conn.execute(
            select(ResultRow.id, ResultRow.started_at, ResultRow.output_text).order_by(ResultRow.id)
        ).all()
        scores = conn.execute(
            select(ScoreRow.id, ScoreRow.result_id, ScoreRow.metric, ScoreRow.value,
                   ScoreRow.evidence, ScoreRow.result_started_at).order_by(ScoreRow.id)
        ).all()  # fmt: skip
    return [tuple(r) for r in results], [tuple(s) for s in scores]


def partition_of(store: Store, table: str, column: str, ids: list[int]) -> set[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {column} = ANY(:i)"),
            {"i": ids},
        ).scalars()
        return set(rows)


def test_rows_survive_the_migration_down_and_up(any_db_url: str) -> None:
    store = open_store(any_db_url)
    ids = fill(store)
    before = contents(store)
    assert len(before[0]) == 12 and len(before[1]) > 12
    assert all(s[5] == before[0][ids.index(s[1])][1] for s in before[1])  # the result's time
    store.close()

    downgrade(any_db_url, "0006")
    engine = make_engine(any_db_url)
    columns = {c["name"] for c in inspect(engine).get_columns("scores")}
    engine.dispose()
    assert "result_started_at" not in columns
    upgrade(any_db_url)

    store = open_store(any_db_url)
    assert contents(store) == before
    suite_id = store.register_suite(make_suite())
    run_id = store.start_run(suite_id)
    (new_id,) = store.save_results(run_id, suite_id, [ok_record("gpu-a", 99, started_at=NOW)])
    assert new_id > max(ids)  # the id sequence carried on across the rebuild
    if store.engine.dialect.name == "postgresql":
        assert partition_of(store, "results", "id", ids[:4]) == {"results_p202601"}
        assert partition_of(store, "scores", "result_id", ids[8:]) == {"scores_p202603"}


def test_a_new_month_gets_its_own_partition(pg_url: str) -> None:
    store = open_store(pg_url)
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())
    run_id = store.start_run(suite_id)
    far = datetime(2031, 7, 9, 23, 59, tzinfo=UTC)
    ids = store.save_results(run_id, suite_id, [ok_record("gpu-a", 1, started_at=far)])
    store.finish_run(run_id)
    score_stored(store, ResultFilter(run_ids=(run_id,)), reference=False)
    assert partition_of(store, "results", "id", ids) == {"results_p203107"}
    assert partition_of(store, "scores", "result_id", ids) == {"scores_p203107"}


def test_score_of_a_missing_result_is_refused(any_db_url: str) -> None:
    store = open_store(any_db_url)
    fill(store)
    missing = ScoreToSave(987654, "fixed", "f" * 16, "fixed_fail", 0.0, False, None)
    with pytest.raises(StoreError, match="no stored result with id 987654"):
        save_scores(store, [missing])


def rollups(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(RollupRow.run_id, RollupRow.aggregation, RollupRow.metric, RollupRow.bucket,
                   RollupRow.n, RollupRow.k).order_by(RollupRow.id)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]


def test_old_results_go_but_evidence_and_rollups_stay(any_db_url: str) -> None:
    store = open_store(any_db_url)
    ids = fill(store)
    cited = ids[1]  # a January result an alert cites
    with store.engine.begin() as conn:
        conn.execute(
            insert(AlertRow).values(
                fingerprint="f" * 64, labels={"pool": "a"}, metric="fixed_fail",
                status="resolved", pending_at=MONTHS[0], baseline_rate=0.01, margin=0.02,
                evidence_ids=[cited],
            )
        )  # fmt: skip
    sums = rollups(store)
    policy = RetentionPolicy(raw_output_days=400, result_days=60)

    planned = prune(store, policy, now=NOW, dry_run=True)
    assert planned.results_dropped == 7 and len(contents(store)[0]) == 12
    report = prune(store, policy, now=NOW)

    assert report.results_dropped == 7
    assert report.results_cutoff == NOW - timedelta(days=60)
    results, scores = contents(store)
    assert [r[0] for r in results] == [cited, *ids[8:]]
    assert {s[1] for s in scores} == {cited, *ids[8:]}
    kept = store.get_result(cited)
    assert kept.output_text and kept.scores
    assert rollups(store) == sums  # history still adds up in compare, reports and alerts
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            names = set(
                conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE tablename ~ '_p2026'")
                ).scalars()
            )
        assert {"results_p202601", "results_p202602", "scores_p202601"}.isdisjoint(names)
        assert "results_p202603" in names
        assert partition_of(store, "results", "id", [cited]) == {"results_default"}
    assert prune(store, policy, now=NOW).results_dropped == 0  # safe to repeat


def test_a_run_not_rolled_up_keeps_its_results(any_db_url: str) -> None:
    store = open_store(any_db_url)
    fill(store, finish=False)  # runs still open: no rollups yet
    report = prune(store, RetentionPolicy(raw_output_days=400, result_days=60), now=NOW)
    assert report.results_dropped == 0
    assert len(contents(store)[0]) == 12


def test_prune_command_drops_old_results(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    fill(store)  # every result is from early 2026, long before today: all older than 60 days
    cli = CliRunner()
    args = ["prune", "--older-than", "400d", "--drop-results-after", "60d", "--db", sqlite_url]
    shown = cli.invoke(app, [*args, "--dry-run"])
    assert shown.exit_code == 0, shown.output
    assert "results deleted" in shown.output and len(contents(store)[0]) == 12
    done = cli.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["results_dropped"] == 12
    assert contents(store) == ([], [])
    failed = cli.invoke(app, ["prune", "--drop-results-after", "36h", "--db", sqlite_url])
    assert failed.exit_code == 3 and "--drop-results-after '36h'" in failed.output
    assert len(failed.output.strip().splitlines()) == 1
