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


def test_an_aa_replay_raises_no_alert(sqlite_url: str) -> None:
    """Changes recorded, nothing switched: not one alert fires (nor goes pending for long)."""
    from canary.alerts.queries import list_alerts

    store = open_store(sqlite_url)
    report = analyse(store, run_scenario(store, load_scenario("aa"), progress=lambda _: None))
    fired = [a for a in list_alerts(store, limit=1000) if a.fired_at is not None]
    assert fired == [], render_markdown(report)
    assert report.faults == [] and report.false_alerts == [] and report.passed


def test_two_faults_on_one_cohort_get_an_episode_each(sqlite_url: str) -> None:
    """Top-k after deploy A, then misrouting after load-balancer change B, on the front door:
    B's fault is not masked by A's firing alert: it gets its own episode, attributed to B; A's
    episodes resolve after A's rollback and before B's, B's after its own. B shows twice: the
    long-context pool is not the reference model, so `model_mismatch` (which A does not move)
    fires as B's own alert, and on the cohort × metric A's alert holds B gets an escalation.

    One of A's metrics may resolve while A is still deployed: approximate top-k bites only in
    batches, and once B sends half the sessions away the GPU pool's batches shrink, so the
    data itself recovers (`early_resolves`); A's alerting as a whole must still end after A's
    rollback."""
    store = open_store(sqlite_url)
    scenario = load_scenario("two-faults")
    run = run_scenario(store, scenario, progress=lambda _: None)
    report = analyse(store, run)
    table = render_markdown(report)
    topk, misrouting = report.faults
    assert (topk.fault, misrouting.fault) == ("approx-topk", "misrouting")
    assert topk.detected and topk.attributed_to == "gpu-deploy-A", table
    assert misrouting.detected and misrouting.attributed_to == "lb-B", table
    assert misrouting.escalations >= 1, "B's fault shows on the cohort × metric A's alert holds"
    assert misrouting.cohort == topk.cohort
    assert topk.resolved_after_rollback and misrouting.resolved_after_rollback, table
    rolled = {a.step.ends: a.tick for a in run.applied if a.step.ends}
    assert topk.resolved_ticks is not None
    assert rolled["approx-topk"] + topk.resolved_ticks < rolled["misrouting"], table
    assert report.false_alerts == [] and report.misattributed == [], table
    assert "escalation" in table
