"""What a round reports back: per-endpoint counts and latency percentiles, plus totals."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from canary.records import ResultRecord

__all__ = ["EndpointStats", "RoundSummary", "percentile"]


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint's share of a round. Latency percentiles are over successful requests only,
    so a burst of timeouts shows in `errors` rather than bending p50."""

    endpoint: str
    sent: int
    ok: int
    errors: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    planned: int = 0
    """Requests the round meant to send; more than `sent` when the round was interrupted."""

    @property
    def failed(self) -> int:
        return self.sent - self.ok


@dataclass(frozen=True, slots=True)
class RoundSummary:
    """The result of `run_round`: per-endpoint stats and totals."""

    suite: str
    suite_version: str
    load_shape: str
    started_at: datetime
    duration_s: float
    endpoints: tuple[EndpointStats, ...]
    interrupted: bool = False
    """A stop was requested and some planned requests were never sent."""

    @property
    def planned(self) -> int:
        return sum(e.planned for e in self.endpoints)

    @property
    def sent(self) -> int:
        return sum(e.sent for e in self.endpoints)

    @property
    def ok(self) -> int:
        return sum(e.ok for e in self.endpoints)

    @property
    def failed(self) -> int:
        return self.sent - self.ok

    @property
    def errors(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for e in self.endpoints:
            total.update(e.errors)
        return dict(total)

    @property
    def all_unreachable(self) -> bool:
        """Every request that was sent failed to connect (the CLI's ENDPOINT exit code)."""
        return self.sent > 0 and self.errors.get("connect", 0) == self.sent

    def endpoint(self, name: str) -> EndpointStats:
        for stats in self.endpoints:
            if stats.endpoint == name:
                return stats
        raise KeyError(name)


def percentile(values: Iterable[float], q: float) -> float | None:
    """The `q`-th percentile (0–100) by linear interpolation; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class StatsTally:
    """Accumulates one endpoint's records into `EndpointStats` without keeping the records."""

    def __init__(self, endpoint: str, planned: int) -> None:
        self.endpoint = endpoint
        self.planned = planned
        self.sent = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []

    def add(self, record: ResultRecord) -> None:
        self.sent += 1
        if record.error_kind is None:
            self.latencies.append(record.latency_ms)
        else:
            self.errors[record.error_kind] += 1

    def stats(self) -> EndpointStats:
        return EndpointStats(
            endpoint=self.endpoint,
            sent=self.sent,
            ok=len(self.latencies),
            errors=dict(self.errors),
            p50_ms=percentile(self.latencies, 50),
            p95_ms=percentile(self.latencies, 95),
            planned=self.planned,
        )
