"""The shortened postmortem replay, as CI runs it: every fault detected on its cohort, attributed
to its change, within 2× the theoretical minimum probes, resolved after rollback, no false
alert. (The full replay is `python -m benchmarks.replay`; its table is in the README.)"""

from __future__ import annotations

import pytest

from canary.demo import DEMO_CHANGE, FAULTY_POOL
from canary.replay import analyse, load_scenario, run_scenario
from canary.replay.render import render_markdown
from canary.replay.scenario import Scenario
from canary.store import open_store

pytestmark = pytest.mark.slow


def test_shortened_postmortem_replay_passes(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    scenario = load_scenario("postmortem-short")
    report = analyse(store, run_scenario(store, scenario, progress=lambda _: None))
    table = render_markdown(report)
    assert [f.fault for f in report.faults] == ["misrouting", "corrupt-logits", "approx-topk"]
    for fault in report.faults:
        assert fault.detected, table
        assert fault.attributed_to == fault.change, table
        assert fault.ratio is not None and fault.ratio <= 2.0, table
        assert fault.resolved_after_rollback, table
    assert report.false_alerts == [], table
    assert report.passed
    assert "| misrouting |" in table and "theoretical min" in table


def test_scenarios_are_validated() -> None:
    full = load_scenario("postmortem")
    assert full.ticks(full.after) == 22 * 6
    with pytest.raises(ValueError, match="which no step starts"):
        Scenario.model_validate(
            {
                "name": "x",
                "schedules": [{"name": "a", "suite": "topk", "every": "10m"}],
                "steps": [{"at": "1h", "change": "c", "kind": "deploy", "ends": "nothing"}],
            }
        )


def test_the_demo_is_a_shipped_scenario() -> None:
    demo = load_scenario("demo")
    (deploy,) = demo.steps
    assert (deploy.change, deploy.kind, deploy.starts) == (DEMO_CHANGE, "deploy", "corrupt-logits")
    assert deploy.pool_faults is not None and deploy.pool_faults.pool == FAULTY_POOL
    assert set(deploy.pool_faults.faults) == {"corrupt_logits"}
    assert demo.ticks(demo.baseline) == 4 and demo.ticks(demo.after) == 8
