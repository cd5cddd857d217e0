"""Rollups: each finished run's sufficient statistics per cohort × metric × detector version.

`compare`, baselines and the alert engine ask the same GROUP BYs of every run again and again;
a run's answer never changes once its scores are written, so it is kept. A run's rollups are
built from its raw rows in one transaction (`build_rollups`) and dropped in the same
transaction as any of its scores changes (`invalidate_runs`, called by `save_scores`), so a
`rollup_runs` row always means the rollups are exactly what the raw GROUP BYs would say.
Readers (`canary.store.aggregates`) use a run's rollups only when they were built with today's
bins and category keys (`RollupSpec.key`) and the time window holds the whole run; every other
run is read raw, so an answer never depends on whether a rollup exists.

Finished hours and days of a suite's runs are compacted into period rollups (`days`), whole
weeks of days into week rollups (`weeks`): a window reads each whole week, day or hour inside
it as one row per cohort × bucket, and only the rounds of the hour it cuts one by one.
"""

from canary.store.rollups.build import (
    BUILD_BATCH,
    build_rollups,
    build_rollups_on,
    invalidate_runs,
    stale_run_ids,
)
from canary.store.rollups.days import HOUR_SETTLE, KEEP_RUN_ROLLUPS, SETTLE, compact_days_on
from canary.store.rollups.spec import (
    BINS,
    CATEGORIES,
    ERRORS,
    FLAGS,
    LATENCY,
    RollupSpec,
    rollup_spec,
)
from canary.store.rollups.split import RunSplit, split_runs

__all__ = [
    "BINS",
    "BUILD_BATCH",
    "CATEGORIES",
    "ERRORS",
    "FLAGS",
    "HOUR_SETTLE",
    "KEEP_RUN_ROLLUPS",
    "LATENCY",
    "SETTLE",
    "RollupSpec",
    "RunSplit",
    "build_rollups",
    "build_rollups_on",
    "compact_days_on",
    "invalidate_runs",
    "rollup_spec",
    "split_runs",
    "stale_run_ids",
]
