"""No masking: a change recorded while a cohort's alert fires opens an escalation of its own
when the rate rises beyond what the firing episode explains, and a rollback resolves the
episode of the change it undoes, not the other one. Pure lifecycle first, then the engine on a
real store (SQLite and PostgreSQL) with real detector scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from canary.alerts.attribution import rollback_of
from canary.alerts.lifecycle import (
    Action,
    ChangeEvent,
    Escalate,
    MonitorState,
    OpenAlert,
    Resolve,
    ResolveEpisode,
    Rules,
    TallyEpisode,
    step,
)
from canary.stats.cusum import CusumRateDetector

if TYPE_CHECKING:
    from canary.alerts.settings import AlertSettings

T0 = datetime(2026, 5, 1, tzinfo=UTC)
P0, MARGIN = 0.01, 0.02
RULES = Rules(margin=MARGIN, evidence_limit=5)
N = 100


class Monitor:
    """Steps a state round after round, giving ids to the alerts it opens, as the store would."""

    def __init__(self) -> None:
        detector = CusumRateDetector.for_arl(P0, MARGIN, arl_rounds=10_000)
        state = MonitorState.from_stored("ok", {}, None, detector)
        assert state is not None
        self.state = state
        self.round = 0
        self.next_id = 1
        self.actions: list[Action] = []
        self.pending: list[ChangeEvent] = []

    def change(self, change_id: str, rollback: str | None = None) -> None:
        at = T0 + timedelta(hours=self.round, minutes=-30)
        self.pending.append(ChangeEvent(change_id, at, rollback))

    def feed(self, k: int, n: int = N) -> list[Action]:
        at = T0 + timedelta(hours=self.round)
        self.round += 1
        state, actions = step(self.state, k, n, at, RULES, self.pending)
        self.pending = []
        if any(isinstance(a, OpenAlert) for a in actions):
            state = replace(state, alert_id=self._id())
        if any(isinstance(a, Escalate) for a in actions):
            new_id = self._id()
            episodes = tuple(
                replace(e, alert_id=new_id) if e.alert_id is None else e for e in state.episodes
            )
            state = replace(state, episodes=episodes)
        self.state = state
        self.actions += actions
        return actions

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def until(self, k: int, done: type, limit: int = 200) -> list[Action]:
        """Feed ``k`` flagged per round until an action of type ``done`` comes."""
        for _ in range(limit):
            actions = self.feed(k)
            if any(isinstance(a, done) for a in actions):
                return actions
        raise AssertionError(f"no {done.__name__} within {limit} rounds at {k}/{N}")


def firing_on_a() -> Monitor:
    """Healthy, then deploy A (10% against 1%) fires; the alert is attributed to A."""
    monitor = Monitor()
    for _ in range(10):
        monitor.feed(1)
    while monitor.state.status != "firing":
        monitor.feed(10)
    return replace_change(monitor, "deploy-A")


def replace_change(monitor: Monitor, change_id: str) -> Monitor:
    """What the engine loads with the firing alert: the change it was attributed to."""
    monitor.state = replace(monitor.state, alert_change=change_id)
    return monitor


def escalated_on_b(first_after: int = 18) -> Monitor:
    monitor = firing_on_a()
    for _ in range(3):
        monitor.feed(10)
    monitor.change("lb-B")
    monitor.until(first_after, Escalate)
    return monitor


def resolved_ids(actions: Sequence[Action]) -> list[int]:
    return [a.alert_id for a in actions if isinstance(a, ResolveEpisode)]


def test_a_second_fault_opens_its_own_episode_attributed_to_its_change() -> None:
    monitor = escalated_on_b()
    (escalate,) = [a for a in monitor.actions if isinstance(a, Escalate)]
    assert escalate.change_id == "lb-B" and escalate.parent == 1
    assert escalate.level >= 0.10 - 1e-9, "tested against the rate the first episode explains"
    assert escalate.k / escalate.n > escalate.level + MARGIN
    state = monitor.state
    assert state.status == "firing" and state.watch is None
    assert [(e.alert_id, e.change_id) for e in state.episodes] == [(1, "deploy-A"), (2, "lb-B")]
    # Both episodes keep counting: the escalation's counts go to its own alert.
    actions = monitor.feed(18)
    (tally,) = [a for a in actions if isinstance(a, TallyEpisode)]
    assert tally.alert_id == 2 and tally.n == state.episodes[1].n + N


def test_a_change_that_does_not_raise_the_rate_opens_nothing() -> None:
    monitor = firing_on_a()
    monitor.change("config-C")
    for _ in range(300):
        monitor.feed(10)
    assert not any(isinstance(a, Escalate) for a in monitor.actions)
    assert monitor.state.status == "firing" and monitor.state.episodes == ()
    assert monitor.state.watch is not None and monitor.state.watch.change_id == "config-C"


def test_a_rise_within_the_margin_opens_nothing() -> None:
    monitor = firing_on_a()
    monitor.change("config-C")
    for _ in range(300):
        monitor.feed(11)  # +1 point: inside the 2-point margin
    assert not any(isinstance(a, Escalate) for a in monitor.actions)


def test_each_rollback_resolves_its_own_episode_first_a_then_b() -> None:
    monitor = escalated_on_b()
    monitor.change("rollback-A", rollback="deploy-A")
    actions = monitor.until(9, ResolveEpisode)  # A gone: B's 8 points remain
    assert resolved_ids(actions) == [1]
    assert not any(isinstance(a, Resolve) for a in actions)
    state = monitor.state
    assert state.status == "firing" and state.alert_id == 2 and state.alert_change == "lb-B"
    assert state.episodes == (), "one episode left: the ordinary lifecycle, on B's alert"
    for _ in range(100):
        assert not any(isinstance(a, (Resolve, ResolveEpisode)) for a in monitor.feed(9))
    monitor.change("rollback-B", rollback="lb-B")
    monitor.until(1, Resolve)
    assert monitor.state.status == "ok" and monitor.state.alert_id is None


def test_each_rollback_resolves_its_own_episode_first_b_then_a() -> None:
    monitor = escalated_on_b()
    monitor.change("rollback-B", rollback="lb-B")
    actions = monitor.until(10, ResolveEpisode)  # B gone: A's 10% remains
    assert resolved_ids(actions) == [2]
    assert monitor.state.alert_id == 1 and monitor.state.episodes == ()
    for _ in range(100):
        assert not any(isinstance(a, (Resolve, ResolveEpisode)) for a in monitor.feed(10))
    monitor.change("rollback-A", rollback="deploy-A")
    monitor.until(1, Resolve)
    assert monitor.state.status == "ok"


def test_a_rollback_never_resolves_the_other_episode_of_the_same_size() -> None:
    monitor = firing_on_a()
    for _ in range(3):
        monitor.feed(10)
    monitor.change("lb-B")
    monitor.until(19, Escalate)  # B adds as much as A
    monitor.change("rollback-A", rollback="deploy-A")
    actions = monitor.until(10, ResolveEpisode)
    assert resolved_ids(actions) == [1], "the rate alone cannot tell; the rollback says which"


def test_without_rollbacks_both_resolve_when_the_rate_is_back_at_baseline() -> None:
    monitor = escalated_on_b()
    for _ in range(50):
        assert not any(isinstance(a, (Resolve, ResolveEpisode)) for a in monitor.feed(18))
    actions = monitor.until(1, Resolve)
    assert resolved_ids(actions) == [2]
    assert monitor.state.status == "ok" and monitor.state.episodes == ()


def test_a_rollback_before_the_escalation_fires_drops_the_watch() -> None:
    monitor = firing_on_a()
    monitor.change("lb-B")
    monitor.feed(10)
    assert monitor.state.watch is not None
    monitor.change("rollback-B", rollback="lb-B")
    monitor.feed(10)
    assert monitor.state.watch is None


def test_episodes_and_the_watch_survive_storage() -> None:
    monitor = escalated_on_b()
    monitor.change("config-C")
    monitor.feed(18)
    state = monitor.state
    assert state.watch is not None and len(state.episodes) == 2
    again = MonitorState.from_stored(
        state.status,
        state.to_stored(),
        state.alert_id,
        None,
        alert_k=state.alert_k,
        alert_n=state.alert_n,
        evidence=state.evidence,
        alert_change=state.alert_change,
    )
    assert again == state


@pytest.mark.parametrize(
    ("note", "undone"),
    [
        ("rollback of deploy-A", "deploy-A"),
        ("Rolls back lb-2026-08-29.", "lb-2026-08-29"),
        ("reverts gpu-7, the flag broke top-k", "gpu-7"),
        ("sampling kernel upgrade", None),
        ("", None),
    ],
)
def test_a_change_says_what_it_rolls_back_in_its_note(note: str, undone: str | None) -> None:
    assert rollback_of(note) == undone


# --- the engine on a real store ------------------------------------------------------------

ENGINE_N = 60
"""Single-turn sessions per round; a flagged one answered in Thai (`unexpected_script`)."""


class Cohort:
    """One endpoint's rounds stored as results, scored by the real detectors, evaluated by the
    engine; faults are the share of sessions answered in the wrong script."""

    def __init__(self, url: str) -> None:
        from canary.config.fleet import EndpointConfig
        from canary.probes.model import Probe, Suite
        from canary.store import open_store

        self.store = open_store(url)
        suite = Suite(
            name="chat",
            probes=[Probe(id=f"p{i}", kind="routing", prompt=f"q{i}") for i in range(ENGINE_N)],
        )
        self.suite_id = self.store.register_suite(suite)
        self.store.register_endpoints(
            [EndpointConfig(name="door", base_url="http://d/v1", model="m", labels={"route": "fd"})]
        )
        self.rounds = 0

    def round(self, flagged: int) -> int:
        from canary.records import ResultFilter, ResultRecord
        from canary.scoring import score_stored

        run_id = self.store.start_run(self.suite_id)
        now = datetime.now(UTC)
        records = [
            ResultRecord(
                endpoint="door",
                probe_id=f"p{i}",
                repeat_index=0,
                session_id=f"r{self.rounds}-s{i}",
                labels={"endpoint": "door", "route": "fd", "model": "m", "load": "probe"},
                request={},
                started_at=now,
                latency_ms=1.0,
                attempts=1,
                output_text="the answer is สวัสดี here" if i < flagged else "the answer is here",
            )
            for i in range(ENGINE_N)
        ]
        self.store.save_results(run_id, self.suite_id, records)
        self.store.finish_run(run_id)
        score_stored(self.store, ResultFilter(run_ids=(run_id,)), reference=False)
        self.rounds += 1
        return run_id


def engine_settings(cohort: Cohort) -> AlertSettings:
    from canary.alerts.settings import AlertsConfig, resolve_settings
    from canary.compare.baselines import capture_baseline
    from canary.records import ResultFilter

    capture_baseline(cohort.store, "healthy", ResultFilter(), ("endpoint", "load"))
    config = AlertsConfig(
        baseline="healthy",
        metrics=["unexpected_script"],
        margins={"unexpected_script": 0.03},
    )
    return resolve_settings(cohort.store, config, monitors=1, rounds_per_year=8760)


def test_engine_attributes_two_faults_on_one_cohort_and_resolves_each_at_its_rollback(
    any_db_url: str,
) -> None:
    from canary.alerts.engine import evaluate_run
    from canary.alerts.queries import list_alerts
    from canary.store.changes import record_change

    cohort = Cohort(any_db_url)
    for _ in range(20):
        cohort.round(0)
    settings = engine_settings(cohort)
    resolved_at: dict[str, int] = {}

    def rounds(flagged: int, count: int) -> None:
        for _ in range(count):
            report = evaluate_run(cohort.store, cohort.round(flagged), settings)
            assert report.evaluated
            for t in report.transitions:
                if t.after == "resolved" and t.change_id:
                    resolved_at.setdefault(t.change_id, cohort.rounds)

    def change(change_id: str, note: str = "") -> int:
        record_change(cohort.store, change_id, "deploy", {"route": "fd"}, datetime.now(UTC), note)
        return cohort.rounds

    rounds(0, 2)
    change("deploy-A")
    rounds(6, 12)  # 10%: fires, attributed to A
    change("lb-B")
    rounds(12, 12)  # +10 points after B: masked before, its own episode now
    rollback_a = change("rollback-A", "rollback of deploy-A")
    rounds(6, 15)  # B alone
    rollback_b = change("rollback-B", "rollback of lb-B")
    rounds(0, 15)

    fired = sorted(
        (a for a in list_alerts(cohort.store, limit=100) if a.fired_at is not None),
        key=lambda a: a.id,
    )
    table = [(a.change_id, a.status, a.detail.get("escalation_of")) for a in fired]
    assert [a.change_id for a in fired] == ["deploy-A", "lb-B"], table
    first, second = fired
    assert second.detail["escalation_of"] == first.id
    assert second.baseline_rate >= 6 / ENGINE_N, "tested against what A's episode explains"
    assert first.status == second.status == "resolved", table
    assert first.detail.get("resolved_by") == "rolled back"
    assert rollback_a < resolved_at["deploy-A"] <= rollback_b, resolved_at
    assert resolved_at["lb-B"] > rollback_b, resolved_at


def test_engine_a_change_that_changes_nothing_opens_no_escalation(sqlite_url: str) -> None:
    from canary.alerts.engine import evaluate_run
    from canary.alerts.queries import list_alerts
    from canary.store.changes import record_change

    cohort = Cohort(sqlite_url)
    for _ in range(20):
        cohort.round(0)
    settings = engine_settings(cohort)
    record_change(cohort.store, "deploy-A", "deploy", {"route": "fd"}, datetime.now(UTC))
    for _ in range(10):
        evaluate_run(cohort.store, cohort.round(6), settings)
    record_change(cohort.store, "config-C", "config", {}, datetime.now(UTC))
    for _ in range(25):
        evaluate_run(cohort.store, cohort.round(6), settings)
    fired = [a for a in list_alerts(cohort.store, limit=100) if a.fired_at is not None]
    assert [(a.change_id, a.status) for a in fired] == [("deploy-A", "firing")]


def test_overlapping_faults_a_rollback_that_lowers_the_rate_a_little_resolves_its_episode() -> None:
    """Misrouted sessions escape a pool's fault: rolling A back lowers the rate by less than
    A's increase. The recorded rollback says which episode ended; B's stays firing."""
    monitor = escalated_on_b(first_after=30)
    for _ in range(5):
        monitor.feed(30)
    monitor.change("rollback-A", rollback="deploy-A")
    actions = monitor.until(26, ResolveEpisode, limit=10)
    assert resolved_ids(actions) == [1]
    assert monitor.state.alert_id == 2 and monitor.state.status == "firing"


def test_a_rollback_that_changes_nothing_keeps_both_episodes_open() -> None:
    monitor = escalated_on_b(first_after=30)
    for _ in range(20):
        monitor.feed(30)
    monitor.change("rollback-A", rollback="deploy-A")
    for _ in range(30):
        assert not any(isinstance(a, (Resolve, ResolveEpisode)) for a in monitor.feed(30))
    assert len(monitor.state.episodes) == 2
