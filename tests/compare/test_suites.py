"""Scope by suite: a side that mixes suites is refused unless `--suite` names one, the store
honours the suite filter, and a baseline is compared on the suite it was captured for."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from canary.cli.main import app
from canary.compare import NotComparable, capture_baseline, run_compare
from canary.compare.aggregate import aggregate
from canary.errors import ConfigError, ExitCode
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter
from canary.stats import DEFAULT_POLICIES
from canary.store import Store
from canary.store.impact import session_impact
from tests.compare.conftest import SUITE, T0, Writer

SMOKE = Suite(name="smoke", probes=[Probe(id="s1", kind="script", prompt="Say hi.")])
WINDOW = f"{T0.isoformat()}..{(T0 + timedelta(hours=2)).isoformat()}"
LATER = f"{(T0 + timedelta(hours=2)).isoformat()}..{(T0 + timedelta(hours=4)).isoformat()}"


def _mixed(write_run: Writer) -> tuple[int, int]:
    """One window holding 60 results of SUITE and 20 of SMOKE on gpu-a."""
    main = write_run("gpu-a", 60, 0.0)
    smoke = write_run("gpu-a", 20, 0.0, start=T0 + timedelta(minutes=30), suite=SMOKE, seed=1)
    return main, smoke


def test_the_store_selects_results_by_suite(store: Store, write_run: Writer) -> None:
    _mixed(write_run)
    window = ResultFilter(since=T0, until=T0 + timedelta(hours=2))
    both = aggregate(store, window, ["endpoint"], DEFAULT_POLICIES)
    assert both.suite_results == {SUITE.name: 60, "smoke": 20}
    raw = aggregate(store, window, ["endpoint"], DEFAULT_POLICIES, rollups=False)
    assert raw.suite_results == both.suite_results  # read from the rollups, the same
    assert raw.cohorts["endpoint=gpu-a"].suites == both.cohorts["endpoint=gpu-a"].suites
    only = aggregate(
        store, ResultFilter(since=T0, suites=("smoke",)), ["endpoint"], DEFAULT_POLICIES
    )
    assert only.suite_results == {"smoke": 20} and only.results == 20
    assert set(only.cohorts["endpoint=gpu-a"].suites) == {"smoke"}
    (impact,) = session_impact(store, ResultFilter(suites=("smoke",)))
    assert impact.requests == 20


def test_a_side_mixing_suites_is_refused_with_the_counts(store: Store, write_run: Writer) -> None:
    _mixed(write_run)
    write_run("gpu-a", 60, 0.0, start=T0 + timedelta(hours=3), seed=2)
    with pytest.raises(ConfigError) as refused:
        run_compare(store, WINDOW, LATER)
    message = str(refused.value)
    assert "\n" not in message and "--suite" in message
    assert f"{SUITE.name} (60 results), smoke (20 results)" in message
    assert refused.value.exit_code == ExitCode.USAGE
    named = run_compare(store, WINDOW, LATER, suites=[SUITE.name])
    assert named.suites == (SUITE.name,)
    assert {v.result.n_before for v in named.verdicts if v.metric == "error_rate"} == {60}


def test_the_cli_refusal_is_one_line_with_the_usage_exit(store: Store, write_run: Writer) -> None:
    _mixed(write_run)
    write_run("gpu-a", 60, 0.0, start=T0 + timedelta(hours=3), seed=2)
    runner = CliRunner()
    db = ["--db", store.url]
    out = runner.invoke(app, ["compare", "--before", WINDOW, "--after", LATER, *db])
    assert out.exit_code == 3, out.output
    assert "mixes suites" in out.output and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1
    args = ["compare", "--before", WINDOW, "--after", LATER, "--suite", SUITE.name, "--json"]
    out = runner.invoke(app, [*args, *db])
    assert out.exit_code in (0, 2), out.output
    assert json.loads(out.output)["suites"] == [SUITE.name]
    out = runner.invoke(
        app, ["compare", "--before", WINDOW, "--after", LATER, "--suite", "nope", *db]
    )
    assert out.exit_code == 3 and "known: canary-test, smoke" in out.output


def test_sides_of_different_suites_are_not_comparable(store: Store, write_run: Writer) -> None:
    main = write_run("gpu-a", 40, 0.0)
    smoke = write_run("gpu-a", 40, 0.0, start=T0 + timedelta(hours=1), suite=SMOKE, seed=3)
    with pytest.raises(NotComparable, match="different suites: before canary-test"):
        run_compare(store, f"run:{main}", f"run:{smoke}")


def test_a_baseline_keeps_its_suite(store: Store, write_run: Writer) -> None:
    _mixed(write_run)
    # One of every suite is what the daemon's alerts monitor against; compare refuses it.
    capture_baseline(store, "all", ResultFilter(since=T0), ["endpoint"])
    baseline = capture_baseline(
        store, "smoke", ResultFilter(since=T0, suites=("smoke",)), ["endpoint"]
    )
    assert baseline.aggregate.suites == ("smoke",)
    write_run("gpu-a", 60, 0.0, start=T0 + timedelta(hours=3), seed=2)
    write_run("gpu-a", 20, 0.0, start=T0 + timedelta(hours=3), suite=SMOKE, seed=4)
    # The after side is taken on the baseline's suite: no mix, no --suite needed.
    comparison = run_compare(store, "smoke", LATER)
    assert comparison.suites == ("smoke",)
    assert {v.result.n_after for v in comparison.verdicts if v.metric == "error_rate"} == {20}
    with pytest.raises(NotComparable, match="baseline 'smoke' is of suite smoke"):
        run_compare(store, "smoke", LATER, suites=[SUITE.name])
    with pytest.raises(ConfigError, match=r"baseline 'all' mixes suites: canary-test \(60"):
        run_compare(store, "all", LATER)
    with pytest.raises(NotComparable, match="capture a baseline with --suite smoke"):
        run_compare(store, "all", LATER, suites=["smoke"])
    both = run_compare(store, "all", LATER, suites=[SUITE.name, "smoke"])
    assert {v.result.n_after for v in both.verdicts if v.metric == "error_rate"} == {80}


def test_capture_takes_suite_on_the_cli(store: Store, write_run: Writer) -> None:
    _mixed(write_run)
    runner = CliRunner()
    db = ["--db", store.url]
    since = ["--since", T0.isoformat()]
    out = runner.invoke(app, ["baseline", "capture", "all", *since, "--json", *db])
    assert out.exit_code == 0 and json.loads(out.output)["captured_for"] == []
    out = runner.invoke(
        app, ["baseline", "capture", "b", *since, "--suite", "smoke", "--json", *db]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["results"] == 20
    assert json.loads(out.output)["captured_for"] == ["smoke"]
    exported = json.loads(runner.invoke(app, ["baseline", "show", "b", "--json", *db]).output)
    assert exported["aggregate"]["suites"] == ["smoke"]
