"""The report's per-round series, built from the store's per-run counts.

Series are per run (a round of the daemon or of `canary run`), not per hour: a round is the
unit the monitors judge, and an hourly bucket would blur a fault that began mid-hour. Only a
window of more rounds than `TREND_POINTS` (a week of 5-minute rounds is 2016) is summed into
buckets of whole rounds, each as wide as the shortest of `TREND_WIDTHS` that keeps the series
to about `TREND_POINTS`: the sparkline draws 24 marks and the plot a few hundred, and a point
per round of every cohort cost seconds to read and to draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from canary.compare.aggregate import ERROR_RATE
from canary.records import ResultFilter
from canary.reports.model import TrendPoint
from canary.stats.summaries import summary_spec
from canary.store import Store
from canary.store.reports import fold_slots, trend_rows, window_rounds
from canary.store.rollups import rollup_spec

#: At most about this many points per series; more rounds than this are bucketed.
TREND_POINTS = 200
#: Bucket widths, shortest first (aligned to the epoch: hourly points start on the hour).
TREND_WIDTHS = tuple(timedelta(minutes=m) for m in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440))


def run_series(
    store: Store,
    key_of: Mapping[int, str],
    metrics: Sequence[str],
    window: ResultFilter,
    *,
    max_points: int = TREND_POINTS,
) -> dict[tuple[str, str], list[TrendPoint]]:
    """(cohort key, metric) → per-run flagged/total in the window's runs and time, oldest
    first; the cohorts of ``key_of`` (id → key) merged by key. Past ``max_points`` rounds, a
    point sums a bucket of rounds (`trend_width`): at its first round's time, under its
    newest run."""
    bucket = trend_width(*window_rounds(store, window), window, max_points)
    rows = trend_rows(
        store,
        window,
        list(key_of),
        [m for m in metrics if m != ERROR_RATE],
        errors_as=ERROR_RATE if ERROR_RATE in metrics else None,
        spec=rollup_spec(summary_spec()),
        bucket=bucket,
    )
    series: dict[tuple[str, str], list[TrendPoint]] = {}
    for _, run_id, key, metric, at, n, k in fold_slots(rows, key_of.__getitem__):
        point = TrendPoint(at=at, run_id=run_id, k=k, n=n, rate=k / n if n else 0.0)
        series.setdefault((key, metric), []).append(point)
    for points in series.values():
        points.sort(key=lambda p: (p.at, p.run_id))
    return series


def trend_width(
    rounds: int,
    first: datetime | None,
    last: datetime | None,
    window: ResultFilter,
    max_points: int = TREND_POINTS,
) -> timedelta | None:
    """The bucket width for a window of ``rounds`` rounds started from ``first`` to ``last``
    (the window's own ends where it has them); None: few enough for a point per round."""
    if rounds <= max_points or first is None or last is None:
        return None
    span = (window.until or last) - (window.since or first)
    for width in TREND_WIDTHS:
        if span / width <= max_points:
            return width
    return timedelta(days=math.ceil(span / timedelta(days=max_points)))
