"""The alert lifecycle of one monitor as a pure function: state and a round's counts in, the
next state and the actions it calls for out. No database: the engine applies the actions in
its one write transaction.

Hysteresis on both edges, so an alert does not flap:

- ok → pending: the evidence reached half the firing threshold (shown, never paged).
- pending → ok: the evidence fell back below a quarter of it (the pending alert is closed).
- ok/pending → firing: the evidence reached the threshold (the alert records its onset,
  attribution, evidence and impact: the engine gathers those for `Fire`).
- firing → resolved: a separate recovery statistic, the CUSUM of "rate is back at baseline"
  against "rate is half what was seen from the onset to the alarm" (at least baseline +
  margin), reached ``resolve_nats`` (default half the firing threshold) after at least
  ``resolve_min_rounds`` rounds. Clean rounds are needed, not merely the absence of an alarm.
  The CUSUM itself is frozen while firing, and starts afresh after resolving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from canary.stats.cusum import CusumRateDetector, recovery_log_lr

MonitorStatus = Literal["ok", "pending", "firing"]


@dataclass(frozen=True)
class Rules:
    """What the lifecycle needs of the alert settings, for one monitor."""

    margin: float
    """The metric's configured margin (recorded on a newly opened alert)."""
    resolve_nats: float | None = None
    """Recovery evidence that resolves; None: half the detector's firing threshold."""
    resolve_min_rounds: int = 2
    evidence_limit: int = 20


@dataclass(frozen=True)
class Recovery:
    """The recovery CUSUM of a firing monitor."""

    nats: float = 0.0
    rounds: int = 0
    p_bad: float | None = None
    """The "still bad" rate, fixed at the first round after the alarm."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recovery:
        p_bad = data.get("p_bad")
        return cls(float(data.get("nats", 0.0)), int(data.get("rounds", 0)), p_bad or None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nats": self.nats, "rounds": self.rounds}
        if self.p_bad is not None:
            out["p_bad"] = self.p_bad
        return out


@dataclass(frozen=True)
class MonitorState:
    """One cohort × metric monitor between rounds, with what its open alert has counted."""

    detector: dict[str, Any]
    """`CusumRateDetector.to_dict` (a value: `step` never mutates its input)."""
    status: MonitorStatus = "ok"
    alert_id: int | None = None
    """The open (pending or firing) alert; None for one `step` asks to open (`OpenAlert`)."""
    score: float = 0.0
    recovery: Recovery | None = None
    alert_k: int = 0
    alert_n: int = 0
    """Flagged and scored sessions the firing alert has counted since its onset."""
    evidence: int = 0
    """Evidence ids the firing alert holds (as loaded: `step` cannot know what is found)."""
    last_k: int | None = None
    last_n: int | None = None

    @classmethod
    def from_stored(
        cls,
        status: str,
        state: Mapping[str, Any],
        alert_id: int | None,
        fresh: CusumRateDetector | None,
        *,
        alert_k: int = 0,
        alert_n: int = 0,
        evidence: int = 0,
    ) -> MonitorState | None:
        """A stored monitor as a state; a new one starts from ``fresh``. None when there is
        neither (the baseline has no data on the metric: nothing to test against)."""
        if "detector" in state:
            detector = dict(state["detector"])
        elif fresh is not None:
            detector = fresh.to_dict()
        else:
            return None
        recovery = state.get("recovery")
        if status == "firing" and recovery is None:
            recovery = {}
        return cls(
            detector=detector,
            status=status,  # type: ignore[arg-type]
            alert_id=alert_id,
            score=float(state.get("score", 0.0)),
            recovery=Recovery.from_dict(recovery) if recovery is not None else None,
            alert_k=alert_k,
            alert_n=alert_n,
            evidence=evidence,
            last_k=state.get("last_k"),
            last_n=state.get("last_n"),
        )

    def to_stored(self) -> dict[str, Any]:
        """The monitor row's JSON state."""
        out: dict[str, Any] = {
            "detector": self.detector,
            "threshold": self.detector["threshold"],
            "p0": self.detector["p0"],
            "last_k": self.last_k,
            "last_n": self.last_n,
            "score": self.score,
        }
        if self.recovery is not None:
            out["recovery"] = self.recovery.to_dict()
        return out


@dataclass(frozen=True)
class OpenAlert:
    """Open a pending alert (the monitor has none): the evidence reached half the threshold."""

    onset: datetime | None
    baseline_rate: float
    margin: float
    k: int
    n: int
    score: float


@dataclass(frozen=True)
class Pending:
    """Update the pending alert's counts since the onset and its score."""

    k: int
    n: int
    score: float


@dataclass(frozen=True)
class Fire:
    """The alert fires: record its onset, counts and detector; attribute, collect evidence and
    impact, notify."""

    before: MonitorStatus
    onset: datetime | None
    baseline_rate: float
    margin: float
    k: int
    n: int
    score: float
    threshold: float
    alternative: float
    rounds: int


@dataclass(frozen=True)
class UpdateEvidence:
    """A round while firing: add its counts to the alert and up to ``wanted`` flagged results
    of this round to its evidence."""

    k: int
    n: int
    wanted: int


@dataclass(frozen=True)
class Resolve:
    """The firing alert resolves on recovery evidence."""

    recovery_nats: float
    recovery_rounds: int


@dataclass(frozen=True)
class Clear:
    """The pending alert closes without having fired."""


Action = OpenAlert | Pending | Fire | UpdateEvidence | Resolve | Clear


@dataclass(frozen=True)
class Transition:
    """An alert changed state in an evaluation (what notifications are made of)."""

    alert_id: int
    fingerprint: str
    labels: dict[str, str]
    metric: str
    before: str
    after: str
    change_id: str | None = None


def step(
    state: MonitorState, k: int, n: int, at: datetime, rules: Rules
) -> tuple[MonitorState, list[Action]]:
    """One round, ``k`` flagged of ``n`` sessions taken at ``at``: the next state and the
    actions on the monitor's alert, in the order they apply."""
    detector = CusumRateDetector.from_dict(state.detector)
    if state.status == "firing":
        new, actions = _while_firing(state, detector, k, n, rules)
    else:
        new, actions = _while_watching(state, detector, k, n, at, rules)
    return replace(new, detector=detector.to_dict(), last_k=k, last_n=n), actions


def still_bad_rate(p0: float, margin: float, k: int, n: int) -> float:
    """The rate the recovery test weighs against the baseline: half the rate seen from the
    onset to the alarm (the estimate is biased high, having been selected for crossing the
    threshold; the half absorbs that), never below baseline + margin. Resolving needs
    evidence that the rate is nearer the baseline than that: a fault still running at its
    rate cannot resolve, so the alert does not flap."""
    floor = p0 + margin
    if n == 0:
        return floor
    return min(max(floor, k / n / 2), 0.999)


def _while_watching(
    state: MonitorState,
    detector: CusumRateDetector,
    k: int,
    n: int,
    at: datetime,
    rules: Rules,
) -> tuple[MonitorState, list[Action]]:
    result = detector.update(k, n, at)
    state = replace(state, score=result.score)
    opened: list[Action] = []
    if (result.alarm or result.pending) and state.alert_id is None:
        opened.append(
            OpenAlert(
                result.onset, detector.p0, rules.margin, result.k_seg, result.n_seg, result.score
            )
        )
    if result.alarm:
        fire = Fire(
            before=state.status,
            onset=result.onset,
            baseline_rate=detector.p0,
            margin=detector.margin,
            k=result.k_seg,
            n=result.n_seg,
            score=result.score,
            threshold=detector.threshold,
            alternative=result.alternative,
            rounds=result.rounds,
        )
        firing = replace(
            state,
            status="firing",
            recovery=Recovery(),
            alert_k=result.k_seg,
            alert_n=result.n_seg,
        )
        return firing, [*opened, fire]
    if result.pending:
        pending = replace(state, status="pending", alert_k=result.k_seg, alert_n=result.n_seg)
        return pending, [*opened, Pending(result.k_seg, result.n_seg, result.score)]
    if state.status == "pending" and result.score < detector.threshold / 4:
        cleared = replace(state, status="ok", alert_id=None, alert_k=0, alert_n=0, evidence=0)
        return cleared, [Clear()] if state.alert_id is not None else []
    return state, []


def _while_firing(
    state: MonitorState,
    detector: CusumRateDetector,
    k: int,
    n: int,
    rules: Rules,
) -> tuple[MonitorState, list[Action]]:
    recovery = state.recovery or Recovery()
    # Fixed at the first round after the alarm: the rate that fired it. Re-estimating it
    # from clean rounds would weaken each clean round's evidence the longer recovery runs.
    p_bad = float(
        recovery.p_bad or still_bad_rate(detector.p0, detector.margin, state.alert_k, state.alert_n)
    )
    llr = recovery_log_lr(k, n, detector.p0, p_bad)
    recovery = Recovery(max(0.0, recovery.nats + llr), recovery.rounds + 1, p_bad)
    wanted = rules.evidence_limit - state.evidence if k else 0
    actions: list[Action] = [UpdateEvidence(k, n, max(wanted, 0))]
    state = replace(state, recovery=recovery, alert_k=state.alert_k + k, alert_n=state.alert_n + n)
    resolve_at = rules.resolve_nats or detector.threshold / 2
    if recovery.nats >= resolve_at and recovery.rounds >= rules.resolve_min_rounds:
        detector.reset()
        actions.append(Resolve(recovery.nats, recovery.rounds))
        resolved = replace(
            state,
            status="ok",
            alert_id=None,
            score=0.0,
            recovery=None,
            alert_k=0,
            alert_n=0,
            evidence=0,
        )
        return resolved, actions
    return state, actions
