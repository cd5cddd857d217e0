"""The deploy gate on stored data: verdicts, exit codes, evidence, refusals."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli.main import app
from canary.compare import (
    NotComparable,
    aggregate,
    export_baseline,
    import_baseline,
    run_compare,
    save_baseline,
)
from canary.errors import ConfigError
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter
from canary.stats import DEFAULT_POLICIES
from canary.store import Store
from canary.store.changes import record_change
from tests.compare.conftest import SUITE, T0, Writer


def verdict(comparison: object, metric: str) -> str:
    found = [v.verdict for v in comparison.verdicts if v.metric == metric]  # type: ignore[attr-defined]
    assert len(found) == 1, found
    return found[0]


def test_planted_thai_rate_is_a_regression_with_evidence(store: Store, write_run: Writer) -> None:
    before = write_run("gpu-a", 3000, 0.0)
    after = write_run("gpu-a", 1000, 0.008, start=T0 + timedelta(hours=1), seed=1)
    comparison = run_compare(store, f"run:{before}", f"run:{after}")
    assert verdict(comparison, "unexpected_script") == "regression"
    assert comparison.gate.status == "regression" and comparison.gate.exit_code == 1
    ids = comparison.evidence["endpoint=gpu-a/unexpected_script"]
    assert ids
    for result_id in ids:
        assert "สวัสดี" in (store.get_result(result_id).output_text or "")


def test_same_healthy_behaviour_passes_with_enough_data(store: Store, write_run: Writer) -> None:
    before = write_run("gpu-a", 6000, 0.0)
    after = write_run("gpu-a", 6000, 0.0, start=T0 + timedelta(hours=2), seed=2)
    comparison = run_compare(store, f"run:{before}", f"run:{after}")
    assert verdict(comparison, "unexpected_script") == "pass"
    assert comparison.gate.status == "pass" and comparison.gate.exit_code == 0


def test_too_few_samples_is_inconclusive(store: Store, write_run: Writer) -> None:
    before = write_run("gpu-a", 40, 0.0)
    after = write_run("gpu-a", 40, 0.0, start=T0 + timedelta(hours=1), seed=3)
    comparison = run_compare(store, f"run:{before}", f"run:{after}")
    assert verdict(comparison, "unexpected_script") == "inconclusive"
    assert comparison.gate.exit_code == 2


def test_changed_suite_is_not_comparable(store: Store, write_run: Writer) -> None:
    before = write_run("gpu-a", 50, 0.0)
    changed = Suite(name=SUITE.name, probes=[*SUITE.probes, Probe(id="p3", prompt="new")])
    after = write_run("gpu-a", 50, 0.0, start=T0 + timedelta(hours=1), suite=changed)
    with pytest.raises(NotComparable, match="suite 'canary-test' ran as version"):
        run_compare(store, f"run:{before}", f"run:{after}")


def test_label_selectors_compare_pools_as_wholes(store: Store, write_run: Writer) -> None:
    write_run("gpu-a", 3000, 0.0)
    write_run("tpu-b", 1000, 0.01, seed=4)
    window = f"@{T0.isoformat()}..{(T0 + timedelta(days=1)).isoformat()}"
    comparison = run_compare(store, f"pool=gpu-a{window}", f"pool=tpu-b{window}")
    assert {v.cohort for v in comparison.verdicts} == {"all"}
    assert verdict(comparison, "unexpected_script") == "regression"


def test_change_selector_splits_at_the_change(store: Store, write_run: Writer) -> None:
    write_run("gpu-a", 3000, 0.0, start=T0)
    at = T0 + timedelta(hours=3)
    write_run("gpu-a", 1000, 0.01, start=at, seed=5)
    record_change(store, "deploy-7", "deploy", {"pool": "gpu-a"}, at, "new sampler")
    comparison = run_compare(store, "change:deploy-7", "change:deploy-7", window=timedelta(hours=6))
    assert verdict(comparison, "unexpected_script") == "regression"


def test_baseline_capture_export_import_gives_the_same_verdicts(
    store: Store, write_run: Writer, tmp_path: Path
) -> None:
    before = write_run("gpu-a", 3000, 0.0)
    after = write_run("gpu-a", 1000, 0.008, start=T0 + timedelta(hours=1), seed=1)
    agg = aggregate(store, ResultFilter(run_ids=(before,)), ["endpoint"], DEFAULT_POLICIES)
    save_baseline(store, "healthy", agg, f"run:{before}")
    path = export_baseline(store, "healthy", tmp_path / "healthy.json")
    import_baseline(store, path, name="from-file")
    direct = run_compare(store, f"run:{before}", f"run:{after}")
    for name in ("healthy", "from-file", "baseline:healthy"):
        via_baseline = run_compare(store, name, f"run:{after}")
        assert [(v.cohort, v.metric, v.verdict) for v in via_baseline.verdicts] == [
            (v.cohort, v.metric, v.verdict) for v in direct.verdicts
        ]
    exported = json.loads(path.read_text())
    assert exported["aggregate"]["cohorts"]["endpoint=gpu-a"]["suites"] == {
        "canary-test": [SUITE.version]
    }


def test_histograms_are_binned_in_sql_like_numpy(store: Store, write_run: Writer) -> None:
    """The SQL bin rule equals `histogram_counts` (checked on SQLite and PostgreSQL)."""
    from canary.stats import histogram_counts, histogram_edges

    run = write_run("gpu-a", 400, 0.0)
    agg = aggregate(store, ResultFilter(run_ids=(run,)), ["endpoint"], DEFAULT_POLICIES)
    data = agg.cohorts["endpoint=gpu-a"].metrics
    values = [
        s.value
        for r in store.results_for_run(run)
        for s in r.scores
        if s.metric == "char_entropy" and s.value is not None
    ]
    assert data["char_entropy"].counts == histogram_counts(histogram_edges("char_entropy"), values)
    latencies = [r.latency_ms for r in store.results_for_run(run)]
    assert data["latency_ms"].counts == histogram_counts(histogram_edges("latency_ms"), latencies)


def test_cli_exit_codes(store: Store, write_run: Writer, tmp_path: Path) -> None:
    before = write_run("gpu-a", 3000, 0.0)
    after = write_run("gpu-a", 1000, 0.008, start=T0 + timedelta(hours=1), seed=1)
    runner = CliRunner()
    db = ["--db", store.url]
    out = runner.invoke(
        app, ["compare", "--before", f"run:{before}", "--after", f"run:{after}", "--json", *db]
    )
    assert out.exit_code == 1, out.output
    assert json.loads(out.output)["gate"]["status"] == "regression"
    out = runner.invoke(
        app, ["compare", "--before", f"run:{before}", "--after", f"run:{before}", *db]
    )
    assert out.exit_code in (0, 2) and "gate:" in out.output
    out = runner.invoke(app, ["compare", "--before", "run:x", "--after", f"run:{after}", *db])
    assert out.exit_code == 3 and "run:12" in out.output
    out = runner.invoke(app, ["compare", "--before", "nope", "--after", f"run:{after}", *db])
    assert out.exit_code == 4 and "no baseline named 'nope'" in out.output
    out = runner.invoke(app, ["baseline", "capture", "b1", "--run", str(before), *db])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["baseline", "capture", "b1", "--run", str(before), *db])
    assert out.exit_code == 3 and "--force" in out.output
    out = runner.invoke(app, ["baseline", "list", "--json", *db])
    assert [b["name"] for b in json.loads(out.output)] == ["b1"]
    out = runner.invoke(app, ["compare", "--before", "b1", "--after", f"run:{after}", *db])
    assert out.exit_code == 1 and "canary show" in out.output


def test_capture_needs_a_selection_and_refuses_an_empty_one(
    store: Store, write_run: Writer
) -> None:
    write_run("gpu-a", 100, 0.0)
    runner = CliRunner()
    db = ["--db", store.url]
    out = runner.invoke(app, ["baseline", "capture", "b", *db])
    assert out.exit_code == 3 and "--run ID" in out.output
    window = ["--since", T0.isoformat(), "--until", (T0 + timedelta(hours=1)).isoformat()]
    out = runner.invoke(app, ["baseline", "capture", "b", "--select", "pool=nope", *window, *db])
    assert out.exit_code == 3 and "would be empty" in out.output
    out = runner.invoke(
        app, ["baseline", "capture", "b", "--select", "pool=gpu-a", *window, *db, "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["results"] == 100
    shown = json.loads(runner.invoke(app, ["baseline", "show", "b", "--json", *db]).output)
    cohort = shown["aggregate"]["cohorts"]["endpoint=gpu-a"]
    assert cohort["probes"]["p1"]["unexpected_script"] == [0, 50]


def test_detailed_baseline_keeps_the_healthy_answer_of_fixed_probes(
    store: Store, write_run: Writer
) -> None:
    from collections import Counter

    suite = Suite(name="answers", probes=[Probe(id="f1", kind="fixed", prompt="Say it.")])
    run = write_run("gpu-a", 60, 0.0, suite=suite)
    agg = aggregate(
        store, ResultFilter(run_ids=(run,)), ["endpoint"], DEFAULT_POLICIES, detail=True
    )
    outputs = Counter(r.output_text for r in store.results_for_run(run))
    top_count = outputs.most_common(1)[0][1]
    expected = agg.cohorts["endpoint=gpu-a"].expected["f1"]
    assert outputs[expected] == top_count
    plain = aggregate(store, ResultFilter(run_ids=(run,)), ["endpoint"], DEFAULT_POLICIES)
    assert plain.cohorts["endpoint=gpu-a"].expected == {}


def test_baseline_grouping_wins_and_a_conflicting_by_is_refused(
    store: Store, write_run: Writer
) -> None:
    before = write_run("gpu-a", 200, 0.0)
    agg = aggregate(store, ResultFilter(run_ids=(before,)), ["endpoint"], DEFAULT_POLICIES)
    save_baseline(store, "per-endpoint", agg, f"run:{before}")
    after = write_run("gpu-a", 200, 0.0, start=T0 + timedelta(hours=1), seed=9)
    comparison = run_compare(store, "per-endpoint", f"run:{after}")
    assert comparison.by == ("endpoint",)
    with pytest.raises(ConfigError, match="grouped by endpoint; drop --by"):
        run_compare(store, "per-endpoint", f"run:{after}", by=["pool"])
