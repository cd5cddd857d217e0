"""Alerts as values: what the store hands back, what sinks render and what reports show.

No SQLAlchemy here: the alert lifecycle, sinks and the CLI import these without the database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

AlertStatus = Literal["pending", "firing", "resolved"]
#: Statuses of an alert that is not over: shown by reports, counted by metrics and doctor.
OPEN_ALERT_STATUSES: tuple[AlertStatus, ...] = ("pending", "firing")

#: The labels that name a cohort in alerts, in display order (others follow, sorted).
COHORT_LABEL_ORDER = ("endpoint", "pool", "model", "region", "route", "load")


def alert_fingerprint(labels: Mapping[str, str], metric: str) -> str:
    """Stable id of a cohort × metric: the same cohort and metric always get the same alert."""
    canonical = json.dumps({"labels": dict(sorted(labels.items())), "metric": metric})
    return hashlib.sha256(canonical.encode()).hexdigest()


def cohort_text(labels: Mapping[str, str]) -> str:
    """``endpoint=tpu-bf16,pool=tpu-bf16,load=burst-c8``: known labels first."""
    known = [k for k in COHORT_LABEL_ORDER if k in labels]
    rest = sorted(k for k in labels if k not in COHORT_LABEL_ORDER)
    return ",".join(f"{k}={labels[k]}" for k in (*known, *rest))


@dataclass(frozen=True)
class Alert:
    """One alert as stored: a cohort × metric, its lifecycle times, evidence and attribution."""

    id: int
    fingerprint: str
    labels: dict[str, str]
    metric: str
    status: AlertStatus
    pending_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    onset_at: datetime | None
    change_id: str | None
    baseline_rate: float
    margin: float
    k: int
    n: int
    score: float
    evidence_ids: list[int] = field(default_factory=list)
    impact: dict[str, Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Flagged share of probes since the onset."""
        return self.k / self.n if self.n else 0.0

    @property
    def cohort(self) -> str:
        return cohort_text(self.labels)

    @property
    def group_key(self) -> str:
        """Notifications are per group: all cohorts one change degraded, or one alert alone."""
        return f"change:{self.change_id}" if self.change_id else f"alert:{self.fingerprint}"

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "cohort": self.cohort,
            "labels": self.labels,
            "metric": self.metric,
            "status": self.status,
            "pending_at": iso(self.pending_at),
            "fired_at": iso(self.fired_at),
            "resolved_at": iso(self.resolved_at),
            "onset_at": iso(self.onset_at),
            "change_id": self.change_id,
            "baseline_rate": self.baseline_rate,
            "margin": self.margin,
            "rate": self.rate,
            "k": self.k,
            "n": self.n,
            "score": self.score,
            "evidence_ids": list(self.evidence_ids),
            "impact": self.impact,
            "detail": self.detail,
        }
