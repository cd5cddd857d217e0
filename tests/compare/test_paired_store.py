"""Pairing from the store: the j-th after result of a probe meets the j-th before result of the
same probe and suite version, and the sequential gate uses (and names) the paired test."""

from __future__ import annotations

from datetime import timedelta

from canary.compare.aggregate import aggregate
from canary.compare.sequential_gate import SequentialGate
from canary.compare.sequential_run import evidence, paired_samples
from canary.records import ResultFilter
from canary.stats import DEFAULT_POLICIES
from canary.store import Store
from canary.store.pairs import probe_scores
from tests.compare.conftest import T0, Writer

POLICIES = {"unexpected_script": DEFAULT_POLICIES["unexpected_script"]}


def test_probe_scores_come_in_run_order_with_their_probe(store: Store, write_run: Writer) -> None:
    run = write_run("gpu-a", 10, 0.0)
    rows = probe_scores(store, ResultFilter(run_ids=(run,)), ["unexpected_script"])
    assert len(rows) == 10
    assert [r.probe_key for r in rows[:4]] == ["p1", "p2", "p1", "p2"]
    assert {r.suite for r in rows} == {"canary-test"} and not any(r.flagged for r in rows)


def test_identical_sides_pair_to_zero_differences_and_pass(store: Store, write_run: Writer) -> None:
    before = ResultFilter(run_ids=(write_run("gpu-a", 2000, 0.0),))
    after = ResultFilter(run_ids=(write_run("gpu-a", 2000, 0.0, start=T0 + timedelta(hours=1)),))
    agg_b = aggregate(store, before, ("endpoint",), POLICIES)
    agg_a = aggregate(store, after, ("endpoint",), POLICIES)
    pairs = paired_samples(store, before, after, agg_b, agg_a, POLICIES)
    key = ("endpoint=gpu-a", "unexpected_script")
    assert pairs[key].n == 2000 and pairs[key].mean == 0.5  # every difference is 0
    found, notes = evidence(agg_b, agg_a, POLICIES, pairs)
    (verdict,) = SequentialGate(POLICIES).look(found, 2000)
    assert verdict.method == "paired-betting-eprocess"
    assert verdict.verdict == "pass", verdict
    assert notes == []


def test_planted_rate_is_a_paired_regression(store: Store, write_run: Writer) -> None:
    before = ResultFilter(run_ids=(write_run("gpu-a", 2000, 0.0),))
    after = ResultFilter(
        run_ids=(write_run("gpu-a", 2000, 0.03, start=T0 + timedelta(hours=1), seed=4),)
    )
    agg_b = aggregate(store, before, ("endpoint",), POLICIES)
    agg_a = aggregate(store, after, ("endpoint",), POLICIES)
    pairs = paired_samples(store, before, after, agg_b, agg_a, POLICIES)
    found, _ = evidence(agg_b, agg_a, POLICIES, pairs)
    (verdict,) = SequentialGate(POLICIES).look(found, 2000)
    assert (verdict.verdict, verdict.method) == ("regression", "paired-betting-eprocess")
