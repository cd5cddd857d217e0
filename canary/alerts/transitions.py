"""The actions one round of a monitor calls for, and the transition that carries them (see
`canary.alerts.lifecycle`); the engine applies them in its write transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from canary.alerts.monitor_state import MonitorStatus, OpenAlert


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


@dataclass(frozen=True)
class Escalate:
    """A change recorded while firing raised the rate beyond what the open episodes explain:
    open a firing alert of its own, attributed to ``change_id``, escalating ``parent``."""

    parent: int | None
    change_id: str
    change_at: datetime
    onset: datetime | None
    level: float
    """The rate the open episodes explained: the escalation's baseline."""
    baseline_rate: float
    margin: float
    k: int
    n: int
    score: float
    threshold: float
    alternative: float
    rounds: int


@dataclass(frozen=True)
class TallyEpisode:
    """Set an escalation's counts since it opened."""

    alert_id: int
    k: int
    n: int


@dataclass(frozen=True)
class ResolveEpisode:
    """One of several open episodes resolves; the others stay firing."""

    alert_id: int
    recovery_nats: float
    recovery_rounds: int
    reason: Literal["rolled back", "baseline"]


Action = (
    OpenAlert
    | Pending
    | Fire
    | UpdateEvidence
    | Resolve
    | Clear
    | Escalate
    | TallyEpisode
    | ResolveEpisode
)


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
