"""Round summary values: percentiles and totals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from canary.runner.summary import EndpointStats, RoundSummary, percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([7.0], 95, 7.0), ([1, 2, 3, 4], 50, 2.5), ([10, 20], 95, 19.5)],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_totals_add_up() -> None:
    summary = RoundSummary(
        suite="s",
        suite_version="abc",
        load_shape="probe",
        started_at=datetime.now(UTC),
        duration_s=1.0,
        endpoints=(
            EndpointStats("a", sent=3, ok=1, errors={"timeout": 2}, planned=4),
            EndpointStats("b", sent=4, ok=2, errors={"timeout": 1, "connect": 1}, planned=4),
        ),
    )
    assert (summary.planned, summary.sent, summary.ok, summary.failed) == (8, 7, 3, 4)
    assert summary.errors == {"timeout": 3, "connect": 1}
    assert summary.endpoint("b").failed == 2 and not summary.all_unreachable
