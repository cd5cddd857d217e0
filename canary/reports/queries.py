"""The report's per-round series, built from the store's per-run counts.

Series are per run (a round of the daemon or of `canary run`), not per hour: a round is the
unit the monitors judge, and an hourly bucket would blur a fault that began mid-hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from canary.compare.aggregate import ERROR_RATE
from canary.records import ResultFilter
from canary.reports.model import TrendPoint
from canary.stats.summaries import summary_spec
from canary.store import Store
from canary.store.reports import round_counts
from canary.store.rollups import rollup_spec


def run_series(
    store: Store,
    key_of: Mapping[int, str],
    metrics: Sequence[str],
    window: ResultFilter,
) -> dict[tuple[str, str], list[TrendPoint]]:
    """(cohort key, metric) → per-run flagged/total in the window's runs and time, oldest
    first; the cohorts of ``key_of`` (id → key) merged by key."""
    rounds = round_counts(
        store,
        window,
        list(key_of),
        [m for m in metrics if m != ERROR_RATE],
        errors_as=ERROR_RATE if ERROR_RATE in metrics else None,
        spec=rollup_spec(summary_spec()),
    )
    counts: dict[tuple[str, str, int], tuple[datetime, int, int]] = {}
    for r in rounds:
        slot = (key_of[r.cohort_id], r.metric, r.run_id)
        at, k, n = counts.get(slot, (r.at, 0, 0))
        counts[slot] = (min(at, r.at), k + r.k, n + r.n)
    series: dict[tuple[str, str], list[TrendPoint]] = {}
    for (key, metric, run_id), (at, k, n) in counts.items():
        point = TrendPoint(at=at, run_id=run_id, k=k, n=n, rate=k / n if n else 0.0)
        series.setdefault((key, metric), []).append(point)
    for points in series.values():
        points.sort(key=lambda p: (p.at, p.run_id))
    return series
