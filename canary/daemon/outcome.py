"""What became of a slot and of each round in it: values the daemon returns and logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class RoundOutcome:
    """One load shape's round within a slot."""

    load: str
    run_id: int
    status: str
    sent: int
    errors: int
    transitions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SlotOutcome:
    """One slot: its status and the rounds it ran."""

    schedule: str
    slot_at: datetime
    status: str
    """done, aborted (stopped), failed, or skipped (another daemon owns it)."""
    recovered: bool = False
    rounds: list[RoundOutcome] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "slot_at": self.slot_at.isoformat(),
            "status": self.status,
            "recovered": self.recovered,
            "rounds": [r.__dict__ for r in self.rounds],
            "error": self.error,
        }
