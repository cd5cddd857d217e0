"""What every result says before any detector reads it: did the request fail, how long it took.

These metrics are read by the store straight from the results table (`RESULT_ERRORS`,
`RESULT_LATENCY`); the class only declares them, so they are tested like any other metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from canary.detectors.base import GroupDetector
from canary.detectors.metrics import (
    RESULT_ERRORS,
    RESULT_LATENCY,
    Bins,
    EvidenceView,
    Explanation,
    Metric,
    continuous,
    rate,
)
from canary.detectors.registry import register_detector

ERROR_RATE = "error_rate"
LATENCY = "latency_ms"


def _error_detail(view: EvidenceView) -> dict[str, str | None]:
    return {"error_kind": view.error_kind, "error_detail": view.error_detail}


@register_detector
@dataclass(frozen=True)
class OutcomeDetector(GroupDetector):
    """Failed requests and latency, from the results table."""

    name: ClassVar[str] = "outcome"
    version: ClassVar[str] = "1"
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            ERROR_RATE,
            0.01,
            source=RESULT_ERRORS,
            explain=Explanation(detail=_error_detail),
            reason="1% more failed requests is an outage in the making; fewer is retry noise",
        ),
        continuous(
            LATENCY,
            50.0,
            Bins(1.0, 300_000.0, 256, "log"),
            source=RESULT_LATENCY,
            reason="a 50 ms median shift is what users feel; less is load noise",
        ),
    )
