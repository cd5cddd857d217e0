"""The baseline shipped in baselines/ still matches the suite it was captured with, and a healthy
round of the simulated fleet does not regress against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.compare import import_baseline, run_compare
from canary.probes import load_suite
from canary.records import ResultFilter
from canary.runner.once import run_once
from canary.scoring import score_stored
from canary.sim.embedded import embedded_fleet
from canary.store import open_store

SHIPPED = Path(__file__).resolve().parents[2] / "baselines" / "sim-healthy.json"


def test_shipped_baseline_matches_the_current_topk_suite(sqlite_url: str) -> None:
    baseline = import_baseline(open_store(sqlite_url), SHIPPED)
    version = load_suite("topk").version
    for key, cohort in baseline.aggregate.cohorts.items():
        assert cohort.suites == {"topk": {version}}, (
            f"{SHIPPED.name} was captured with another topk suite version ({key}); re-capture it: "
            "canary run --sim --suite topk (twice), canary baseline capture sim-healthy --run 1 "
            "--run 2, canary baseline export sim-healthy -o baselines/sim-healthy.json"
        )


@pytest.mark.slow
def test_healthy_round_does_not_regress_against_the_shipped_baseline(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    import_baseline(store, SHIPPED)
    with embedded_fleet() as fleet:
        stored = run_once(fleet, load_suite("topk"), store, [fleet.endpoint("gpu-fp32")])
    score_stored(store, ResultFilter(run_ids=(stored.run_id,)))
    comparison = run_compare(store, "sim-healthy", f"run:{stored.run_id}")
    gpu = [v for v in comparison.verdicts if v.cohort == "endpoint=gpu-fp32"]
    assert gpu, comparison.notes
    # Latency measures this machine's load, not the fleet's quality: the baseline was captured on
    # an idle machine, and the suite must pass on a busy one. Every quality metric is held to it.
    quality = [v for v in gpu if v.metric != "latency_ms"]
    assert {v.metric for v in quality} >= {"first_divergence", "error_rate"}, quality
    assert all(v.verdict != "regression" for v in quality), [(v.metric, v.verdict) for v in quality]
