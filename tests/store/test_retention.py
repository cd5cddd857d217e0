"""Retention: old raw outputs go, results, requests, scores and alert evidence stay."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from canary.cli.main import app
from canary.errors import ConfigError
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter
from canary.scoring import score_stored
from canary.scoring.reference import ReferenceScorer
from canary.store import Store, open_store
from canary.store.models import (
    AlertRow,
    DeliveryRow,
    NotificationRow,
    ResultRow,
    ScheduleSlotRow,
    ScoreRow,
)
from canary.store.retention import PruneReport, RetentionPolicy, prune
from tests.store.helpers import error_record, make_endpoints, make_suite, ok_record

NOW = datetime.now(UTC).replace(microsecond=0)
POLICY = RetentionPolicy(raw_output_days=30, bookkeeping_days=90, batch_size=2)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@dataclass
class Fleet:
    """The ids of a store built by `build`, by role."""

    store: Store
    old: list[int]
    """Old results retention must prune."""
    evidence: list[int]
    """Old results an alert cites: they keep their output."""
    new: list[int]
    """Results inside the retention window."""
    slots: dict[str, int]
    notifications: dict[str, int]


def build(url: str) -> Fleet:
    store = open_store(url)
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())
    run_id = store.start_run(suite_id)
    # Five repeats of the determinism probe: the two "b" outputs are flagged mismatches and an
    # alert cites them; the three "a" outputs are pruned with the rest of the old results.
    repeats = ["a", "a", "a", "b", "b"]
    records = [
        ok_record("gpu-a", 0, started_at=ago(60)),
        replace(error_record("gpu-b", 1), started_at=ago(50)),
        ok_record("gpu-a", 2, started_at=ago(40)),
        *[
            ok_record("gpu-b", 10 + i, probe_id="count", output_text=text, started_at=ago(45))
            for i, text in enumerate(repeats)
        ],
        ok_record("gpu-a", 20, started_at=ago(29)),
        ok_record("gpu-b", 21, started_at=ago(1)),
    ]
    ids = store.save_results(run_id, suite_id, records)
    store.finish_run(run_id)
    score_stored(store, ResultFilter(run_ids=(run_id,)), reference=False)
    greet_old, error_old, greet_cited, *group, recent, newest = ids
    evidence = [greet_cited, group[3], group[4]]
    with store.engine.begin() as conn:
        for cited in ([greet_cited], group[3:]):
            conn.execute(
                insert(AlertRow).values(
                    fingerprint="f" * 64,
                    labels={"pool": "b"},
                    metric="majority_mismatch",
                    status="resolved",
                    pending_at=ago(45),
                    baseline_rate=0.01,
                    margin=0.02,
                    evidence_ids=cited,
                )
            )
        slots = {
            name: conn.execute(
                insert(ScheduleSlotRow)
                .values(
                    schedule=f"hourly/{name}",
                    slot_at=at,
                    status=status,
                    owner="host-1",
                    lease_until=at + timedelta(minutes=5),
                    claimed_at=at,
                )
                .returning(ScheduleSlotRow.id)
            ).scalar_one()
            for name, at, status in [
                ("old-done", ago(120), "done"),
                ("old-missed", ago(100), "missed"),
                ("old-running", ago(100), "running"),
                ("recent-done", ago(10), "done"),
            ]
        }
        notifications = {}
        for name, at, statuses in [
            ("old-delivered", ago(120), ["delivered", "expired"]),
            ("old-no-sink", ago(120), []),
            ("old-pending", ago(120), ["delivered", "pending"]),
            ("recent-delivered", ago(10), ["delivered"]),
        ]:
            notifications[name] = conn.execute(
                insert(NotificationRow)
                .values(created_at=at, group_key=f"alert:{name}", status="firing", payload={})
                .returning(NotificationRow.id)
            ).scalar_one()
            for index, status in enumerate(statuses):
                conn.execute(
                    insert(DeliveryRow).values(
                        notification_id=notifications[name],
                        sink=f"sink-{index}",
                        status=status,
                        next_attempt_at=at,
                        created_at=at,
                    )
                )
    return Fleet(
        store=store,
        old=[greet_old, error_old, *group[:3]],
        evidence=evidence,
        new=[recent, newest],
        slots=slots,
        notifications=notifications,
    )


def snapshot(store: Store) -> dict[str, list[Any]]:
    """Every row retention may touch, as plain tuples."""
    tables: dict[str, Any] = {
        "results": ResultRow,
        "scores": ScoreRow,
        "slots": ScheduleSlotRow,
        "notifications": NotificationRow,
        "deliveries": DeliveryRow,
    }
    with store.engine.connect() as conn:
        return {
            name: [tuple(r) for r in conn.execute(select(row).order_by(row.id)).all()]
            for name, row in tables.items()
        }


def score_rows(store: Store, result_ids: list[int]) -> set[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                ScoreRow.result_id,
                ScoreRow.detector,
                ScoreRow.metric,
                ScoreRow.value,
                ScoreRow.flagged,
                ScoreRow.created_at,
            ).where(ScoreRow.result_id.in_(result_ids))
        ).all()
    return {tuple(r) for r in rows}


@pytest.fixture
def fleet(any_db_url: str) -> Fleet:
    return build(any_db_url)


def test_prunes_exactly_the_old_outputs_and_keeps_scores_and_evidence(fleet: Fleet) -> None:
    store = fleet.store
    everything = fleet.old + fleet.evidence + fleet.new
    before = {i: store.get_result(i) for i in everything}
    scores_before = score_rows(store, everything)
    scored = {r for r, *_ in scores_before}
    assert scored >= set(fleet.old) - {fleet.old[1]}, "every old answer was scored"

    report = prune(store, POLICY, now=NOW)

    assert (report.results_pruned, report.results_kept_as_evidence) == (5, 3)
    assert (report.slots_deleted, report.notifications_deleted) == (2, 2)
    assert store.count_results() == len(everything), "result rows are never deleted"
    for i in fleet.old:
        got = store.get_result(i)
        assert got.pruned_at == NOW
        assert (got.output_text, got.tokens, got.error_detail, got.usage) == (None,) * 4
        assert got.response_headers == {}
        assert got.request == before[i].request and got.error_kind == before[i].error_kind
    for i in fleet.evidence + fleet.new:
        assert store.get_result(i) == before[i], "evidence and recent results are untouched"
    assert score_rows(store, everything) == scores_before
    with store.engine.connect() as conn:
        # SQL NULL, not the JSON value null, so `response IS NULL` finds pruned rows.
        nulls = conn.execute(select(ResultRow.id).where(ResultRow.response.is_(None))).scalars()
        slots = set(conn.execute(select(ScheduleSlotRow.id)).scalars())
        notifications = set(conn.execute(select(NotificationRow.id)).scalars())
        deliveries = set(conn.execute(select(DeliveryRow.notification_id)).scalars())
        assert sorted(nulls) == sorted(fleet.old)
    assert slots == {fleet.slots["old-running"], fleet.slots["recent-done"]}
    kept = {fleet.notifications["old-pending"], fleet.notifications["recent-delivered"]}
    assert notifications == kept and deliveries == kept, "deliveries cascade"


def test_dry_run_counts_and_changes_nothing(fleet: Fleet) -> None:
    before = snapshot(fleet.store)
    dry = prune(fleet.store, POLICY, now=NOW, dry_run=True)
    assert snapshot(fleet.store) == before
    real = prune(fleet.store, POLICY, now=NOW)
    assert dry.dry_run and not real.dry_run
    assert dry.to_dict() == {**real.to_dict(), "dry_run": True}


def test_running_twice_is_a_no_op(fleet: Fleet) -> None:
    prune(fleet.store, POLICY, now=NOW)
    after_first = snapshot(fleet.store)
    again = prune(fleet.store, POLICY, now=NOW + timedelta(hours=1))
    assert snapshot(fleet.store) == after_first
    assert again == PruneReport(
        results_pruned=0,
        results_kept_as_evidence=3,
        slots_deleted=0,
        notifications_deleted=0,
        output_cutoff=NOW + timedelta(hours=1) - timedelta(days=30),
        bookkeeping_cutoff=NOW + timedelta(hours=1) - timedelta(days=90),
    )


def test_rescoring_leaves_pruned_results_and_their_groups_alone(fleet: Fleet) -> None:
    store = fleet.store
    prune(store, POLICY, now=NOW)
    pruned_scores = score_rows(store, fleet.old)
    cited_scores = score_rows(store, fleet.evidence)
    run_id = store.get_result(fleet.new[0]).run_id

    report = score_stored(store, ResultFilter(run_ids=(run_id,)), reference=False)

    assert report.results == len(fleet.evidence) + len(fleet.new)
    assert score_rows(store, fleet.old) == pruned_scores, "no 'empty output' scores"
    # The cited "b" repeats lost their "a" siblings: judged alone they would match their own
    # majority, so their group is not re-judged and keeps its mismatch flags.
    group_scores = {
        (r, m): (v, f)
        for r, d, m, v, f, _ in score_rows(store, fleet.evidence)
        if d == "determinism"
    }
    assert group_scores == {
        (r, m): (v, f) for r, d, m, v, f, _ in cited_scores if d == "determinism"
    }
    assert all(flagged for (_, m), (_, flagged) in group_scores.items() if m == "majority_mismatch")


def test_policy_is_strict_and_whole_days() -> None:
    assert RetentionPolicy.older_than("2w").raw_output_days == 14
    for bad in ("36h", "12h", "soon"):
        with pytest.raises(ConfigError):
            RetentionPolicy.older_than(bad)
    with pytest.raises(ValueError, match="extra"):
        RetentionPolicy.model_validate({"raw_output_days": 30, "raw_days": 3})
    with pytest.raises(ValueError):
        RetentionPolicy(raw_output_days=0)


def test_prune_and_show_commands(sqlite_url: str) -> None:
    fleet = build(sqlite_url)
    cli = CliRunner()
    dry = cli.invoke(app, ["prune", "--older-than", "30d", "--dry-run", "--db", sqlite_url])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and fleet.store.get_result(fleet.old[0]).pruned_at is None

    done = cli.invoke(app, ["prune", "--older-than", "30d", "--json", "--db", sqlite_url])
    assert done.exit_code == 0, done.output
    counts = json.loads(done.output)
    assert (counts["results_pruned"], counts["results_kept_as_evidence"]) == (5, 3)

    shown = cli.invoke(app, ["show", str(fleet.old[0]), "--db", sqlite_url])
    assert shown.exit_code == 0, shown.output
    assert "output pruned on" in shown.output and "retention keeps scores only" in shown.output
    assert "scores" in shown.output and "สวัสดี 🦜" not in shown.output
    as_json = cli.invoke(app, ["show", str(fleet.old[0]), "--json", "--db", sqlite_url])
    assert json.loads(as_json.output)["pruned_at"] is not None
    kept = cli.invoke(app, ["show", str(fleet.evidence[0]), "--json", "--db", sqlite_url])
    assert json.loads(kept.output)["pruned_at"] is None

    for bad, message in (("36h", "whole days"), ("soon", "not a duration")):
        failed = cli.invoke(app, ["prune", "--older-than", bad, "--db", sqlite_url])
        assert failed.exit_code == 3 and message in failed.output
        assert len(failed.output.strip().splitlines()) == 1


def test_partly_pruned_sampling_groups_are_not_judged_again(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    suite = Suite(
        name="draws",
        probes=[Probe(id="draw", kind="sampling", prompt="Pick", repeat=3)],
    )
    suite_id = store.register_suite(suite)
    store.register_endpoints(make_endpoints())
    run_id = store.start_run(suite_id)
    ids = store.save_results(
        run_id,
        suite_id,
        [ok_record("gpu-a", i, probe_id="draw", started_at=ago(40)) for i in range(3)],
    )
    with store.engine.begin() as conn:
        conn.execute(
            insert(AlertRow).values(
                fingerprint="f" * 64,
                labels={"pool": "a"},
                metric="first_token_out_of_support",
                status="firing",
                pending_at=ago(40),
                baseline_rate=0.01,
                margin=0.02,
                evidence_ids=ids[1:],
            )
        )
    assert prune(store, POLICY, now=NOW).results_pruned == 1
    assert ReferenceScorer(store).score(ResultFilter(run_ids=(run_id,))) == [], (
        "the cited draws keep their scores"
    )
