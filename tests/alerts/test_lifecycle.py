"""The alert lifecycle as a pure function: no database, only states, counts and actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from canary.alerts.lifecycle import (
    Action,
    Clear,
    Fire,
    MonitorState,
    OpenAlert,
    Pending,
    Resolve,
    Rules,
    UpdateEvidence,
    step,
)
from canary.stats.cusum import CusumRateDetector

T0 = datetime(2026, 5, 1, tzinfo=UTC)
P0, MARGIN = 0.01, 0.02
RULES = Rules(margin=MARGIN, evidence_limit=5)
N = 100
"""Sessions per round."""


def fresh() -> MonitorState:
    detector = CusumRateDetector.for_arl(P0, MARGIN, arl_rounds=10_000)
    state = MonitorState.from_stored("ok", {}, None, detector)
    assert state is not None
    return state


class Monitor:
    """Steps a state round after round, applying `OpenAlert` the way the store would."""

    def __init__(self, state: MonitorState | None = None) -> None:
        self.state = state or fresh()
        self.round = 0
        self.history: list[tuple[str, list[Action]]] = []
        self.next_id = 1

    def feed(self, k: int, n: int = N) -> list[Action]:
        at = T0 + timedelta(hours=self.round)
        self.round += 1
        state, actions = step(self.state, k, n, at, RULES)
        if any(isinstance(a, OpenAlert) for a in actions):
            state = replace(state, alert_id=self.next_id)
            self.next_id += 1
        self.state = state
        self.history.append((state.status, actions))
        return actions

    def statuses(self) -> list[str]:
        return [status for status, _ in self.history]


def healthy(monitor: Monitor, rounds: int) -> None:
    """At the baseline rate: one flagged session per round of 100."""
    for _ in range(rounds):
        monitor.feed(1)


def test_healthy_counts_stay_quiet() -> None:
    monitor = Monitor()
    for i in range(500):
        monitor.feed(2 if i % 3 == 0 else 0)  # 0.67%, under the baseline's 1%
    assert set(monitor.statuses()) == {"ok"}
    assert all(actions == [] for _, actions in monitor.history)
    assert monitor.state.alert_id is None
    assert monitor.state.last_k == 0 and monitor.state.last_n == N


def test_a_step_change_goes_pending_then_fires_once() -> None:
    monitor = Monitor()
    healthy(monitor, 20)
    bad_from = monitor.round
    while monitor.state.status != "firing":
        monitor.feed(8)
        assert monitor.round < bad_from + 50, "an 8% rate against 1% must fire"
    statuses = monitor.statuses()[bad_from:]
    assert statuses[0] in ("ok", "pending")
    assert "pending" in statuses, "half the threshold comes before all of it"
    assert statuses.index("pending") < statuses.index("firing")

    actions = [a for _, acts in monitor.history[bad_from:] for a in acts]
    opened = [a for a in actions if isinstance(a, OpenAlert)]
    assert len(opened) == 1, "one alert per episode, opened when it went pending"
    (fire,) = [a for a in actions if isinstance(a, Fire)]
    assert fire.before == "pending"
    assert fire.onset == T0 + timedelta(hours=bad_from)
    assert fire.score >= fire.threshold and fire.baseline_rate == P0
    assert fire.k / fire.n > P0 + MARGIN
    assert isinstance(monitor.history[-1][1][-1], Fire)
    assert monitor.state.alert_k == fire.k and monitor.state.alert_n == fire.n

    # Still bad: it stays firing, counts each round into the alert, never fires again.
    for _ in range(30):
        (update,) = monitor.feed(8)
        assert update == UpdateEvidence(8, N, RULES.evidence_limit)
    assert set(monitor.statuses()[-30:]) == {"firing"}


def fired() -> Monitor:
    monitor = Monitor()
    healthy(monitor, 10)
    while monitor.state.status != "firing":
        monitor.feed(10)
    return monitor


def test_recovery_resolves_after_clean_rounds_and_starts_afresh() -> None:
    monitor = fired()
    alert_id = monitor.state.alert_id
    rounds = 0
    while monitor.state.status == "firing":
        monitor.feed(0)
        rounds += 1
        assert rounds < 100, "clean rounds must resolve"
    assert rounds >= RULES.resolve_min_rounds
    *updates, resolve = monitor.history[-1][1]
    assert updates == [UpdateEvidence(0, N, 0)]
    assert isinstance(resolve, Resolve) and resolve.recovery_rounds == rounds
    assert (
        resolve.recovery_nats >= CusumRateDetector.from_dict(monitor.state.detector).threshold / 2
    )
    state = monitor.state
    assert (state.status, state.alert_id, state.recovery, state.score) == ("ok", None, None, 0.0)
    detector = CusumRateDetector.from_dict(state.detector)
    assert detector.rounds == 0 and set(detector.scores) == {0.0}
    assert alert_id is not None
    assert "recovery" not in state.to_stored()

    healthy(monitor, 50)
    assert set(monitor.statuses()[-50:]) == {"ok"}


def test_recovery_needs_the_minimum_rounds_however_clean() -> None:
    monitor = fired()
    (only,) = monitor.feed(0, n=10_000)
    assert isinstance(only, UpdateEvidence)
    assert monitor.state.status == "firing"
    assert monitor.state.recovery is not None and monitor.state.recovery.rounds == 1


def test_a_fault_still_running_never_resolves() -> None:
    monitor = fired()
    p_bad = None
    for _ in range(300):
        monitor.feed(6)  # lower than the alarm's rate, still far above the baseline
        assert monitor.state.status == "firing"
        assert monitor.state.recovery is not None
        p_bad = p_bad or monitor.state.recovery.p_bad
        assert monitor.state.recovery.p_bad == p_bad, "the rate that fired stays fixed"


def test_no_flapping_around_the_pending_threshold() -> None:
    monitor = Monitor()
    healthy(monitor, 5)
    while monitor.state.status != "pending":
        monitor.feed(5)
    threshold = CusumRateDetector.from_dict(monitor.state.detector).threshold
    # Between a quarter and half the threshold: the pending alert neither clears nor re-opens.
    while monitor.state.score >= threshold / 4:
        actions = monitor.feed(1 if monitor.state.score < threshold / 2 else 0)
        if monitor.state.status == "pending" and monitor.state.score < threshold / 2:
            assert actions == []
        if monitor.state.status == "ok":
            break
    assert monitor.state.status == "ok"
    assert isinstance(monitor.history[-1][1][0], Clear)
    assert monitor.state.alert_id is None
    opened = [a for _, acts in monitor.history for a in acts if isinstance(a, OpenAlert)]
    assert len(opened) == 1


def test_pending_counts_follow_the_evidence() -> None:
    monitor = Monitor()
    while monitor.state.status != "pending":
        actions = monitor.feed(4)
    assert isinstance(actions[0], OpenAlert) and isinstance(actions[1], Pending)
    opened, pending = actions
    assert isinstance(opened, OpenAlert) and isinstance(pending, Pending)
    assert opened.margin == MARGIN and (opened.k, opened.n) == (pending.k, pending.n)
    assert opened.onset == T0


def test_evidence_is_asked_for_only_while_short_and_flagged() -> None:
    monitor = fired()
    full = replace(monitor.state, evidence=RULES.evidence_limit)
    _, actions = step(full, 9, N, T0, RULES)
    assert actions[0] == UpdateEvidence(9, N, 0)
    some = replace(monitor.state, evidence=2)
    _, actions = step(some, 9, N, T0, RULES)
    assert actions[0] == UpdateEvidence(9, N, RULES.evidence_limit - 2)


def test_step_leaves_its_input_alone_and_the_state_round_trips() -> None:
    monitor = fired()
    before = monitor.state
    snapshot = before.to_stored()
    step(before, 0, N, T0, RULES)
    assert before.to_stored() == snapshot
    again = MonitorState.from_stored(
        before.status,
        snapshot,
        before.alert_id,
        None,
        alert_k=before.alert_k,
        alert_n=before.alert_n,
    )
    assert again == replace(before, evidence=0)


def test_no_detector_no_monitor() -> None:
    assert MonitorState.from_stored("ok", {}, None, None) is None
