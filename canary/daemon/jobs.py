"""The daemon's background jobs and its alert budget: a job that logs its failure instead of
killing the scheduler's, and the settings for every monitor of the fleet."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from canary.alerts.settings import AlertsConfig, AlertSettings
    from canary.daemon.config import ScheduleConfig
    from canary.store import Store

logger = logging.getLogger("canary.daemon.service")


def alert_settings(
    store: Store,
    config: AlertsConfig,
    plans: Sequence[tuple[int, ScheduleConfig]],
    sinks: tuple[str, ...],
) -> AlertSettings:
    """Settings for the fleet's monitors; ``plans`` are (cohorts, schedule) per schedule. One
    monitor-update budget for the whole fleet: the union bound over every monitor."""
    from canary.alerts.settings import monitored_policies, resolve_settings
    from canary.daemon.timing import rounds_per_year

    metrics = len(monitored_policies(config))
    updates_per_year = sum(
        cohorts * metrics * rounds_per_year(schedule) for cohorts, schedule in plans
    )
    return resolve_settings(
        store, config, monitors=1, rounds_per_year=updates_per_year, sink_names=sinks
    )


def quietly(func: Callable[[], Any], name: str) -> Callable[[], None]:
    """A housekeeping job that logs its failure instead of killing the scheduler's job."""

    def job() -> None:
        started = time.perf_counter()
        try:
            func()
        except Exception:  # e.g. the database is briefly unreachable
            logger.exception("housekeeping job %s failed", name)
        else:
            logger.debug("%s took %.3fs", name, time.perf_counter() - started)

    return job
