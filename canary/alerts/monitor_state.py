"""What a monitor remembers between rounds: its rules, its CUSUMs, its open episodes and the
changes it watches (see `canary.alerts.lifecycle`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from canary.stats.cusum import CusumRateDetector

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
class ChangeEvent:
    """A recorded change that touches the monitor's cohort, taken effect since the last round."""

    change_id: str
    at: datetime
    rollback_of: str | None = None
    """The change this one rolls back (`canary.alerts.attribution.rollback_of`)."""


@dataclass(frozen=True)
class Watch:
    """A change recorded while firing, under test: does the rate after it rise beyond what the
    open episodes explain (``level``) by the margin?"""

    change_id: str
    at: datetime
    level: float
    detector: dict[str, Any]
    """`CusumRateDetector.to_dict` of "rate = level" against "level + margin · 2^j"."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Watch:
        return cls(
            str(data["change_id"]),
            datetime.fromisoformat(data["at"]),
            float(data["level"]),
            dict(data["detector"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "at": self.at.isoformat(),
            "level": self.level,
            "detector": self.detector,
        }


@dataclass(frozen=True)
class Episode:
    """One of several open episodes of a monitor (the first is the monitor's own alert)."""

    alert_id: int | None
    """None for an escalation `step` asks to open (`Escalate`); the engine fills it in."""
    change_id: str | None
    level: float
    """The rate the other episodes explained when it opened."""
    rate: float
    """The rate it was opened at (at least level + margin)."""
    k: int = 0
    n: int = 0
    """Flagged and scored sessions it has counted."""
    rolled_back: bool = False
    """A change recorded as the rollback of its change came: it may resolve on its own."""
    recovery: Recovery = field(default_factory=Recovery)
    """Its own recovery CUSUM (after the rollback)."""
    before: float | None = None
    """The rate the open episodes explained when the rollback came."""
    since_k: int = 0
    since_n: int = 0
    """Flagged and scored sessions since the rollback."""

    @property
    def increment(self) -> float:
        return max(self.rate - self.level, 0.0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Episode:
        return cls(
            data.get("alert_id"),
            data.get("change_id"),
            float(data["level"]),
            float(data["rate"]),
            int(data.get("k", 0)),
            int(data.get("n", 0)),
            bool(data.get("rolled_back", False)),
            Recovery.from_dict(data.get("recovery", {})),
            data.get("before"),
            int(data.get("since_k", 0)),
            int(data.get("since_n", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "change_id": self.change_id,
            "level": self.level,
            "rate": self.rate,
            "k": self.k,
            "n": self.n,
            "rolled_back": self.rolled_back,
            "recovery": self.recovery.to_dict(),
            "before": self.before,
            "since_k": self.since_k,
            "since_n": self.since_n,
        }


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
    alert_change: str | None = None
    """The change the open alert is attributed to (as loaded from the alert)."""
    watch: Watch | None = None
    episodes: tuple[Episode, ...] = ()
    """Empty with one episode (the alert); with escalations, every open episode, the
    monitor's alert first, and ``recovery`` is the "back at the baseline" test of them all."""

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
        alert_change: str | None = None,
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
            alert_change=alert_change,
            watch=Watch.from_dict(state["watch"]) if state.get("watch") else None,
            episodes=tuple(Episode.from_dict(e) for e in state.get("episodes", ())),
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
        if self.watch is not None:
            out["watch"] = self.watch.to_dict()
        if self.episodes:
            out["episodes"] = [e.to_dict() for e in self.episodes]
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
