"""One round, stored: the cron-friendly unit of work behind `canary run --once`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from canary.config.fleet import EndpointConfig, FleetConfig
from canary.probes.model import Suite
from canary.records import ResultRecord
from canary.store import Store

if TYPE_CHECKING:
    from canary.runner.round import RoundSummary


@dataclass(frozen=True)
class StoredRound:
    """What one stored round did: its run id, status and per-endpoint summary."""

    run_id: int
    suite: str
    suite_version: str
    status: str
    summary: RoundSummary


def run_once(
    fleet: FleetConfig,
    suite: Suite,
    store: Store,
    endpoints: Sequence[EndpointConfig],
    *,
    load_shape: str = "probe",
    trigger: str = "cli",
    concurrency: int | None = None,
    note: str | None = None,
    stop_flag: threading.Event | None = None,
    handle_signals: bool = True,
    on_start: Callable[[int], None] | None = None,
    repeat: int = 1,
) -> StoredRound:
    """Send ``suite`` to ``endpoints`` once, writing every result as it completes.

    Results are written in batches, each in its own transaction, so an interrupted round keeps
    every batch it finished and the run row says `aborted`.
    """
    from canary.runner.round import run_round_sync

    suite_id = store.register_suite(suite)
    store.register_endpoints(fleet.endpoints)
    run_id = store.start_run(
        suite_id,
        trigger=trigger,
        load_shape=load_shape,
        selection={"endpoints": [e.name for e in endpoints]},
        note=note,
    )
    if on_start is not None:
        on_start(run_id)  # e.g. the daemon links its slot to the run before any request

    def write(records: list[ResultRecord]) -> None:
        store.save_results(run_id, suite_id, records)

    status = "aborted"
    try:
        summary = run_round_sync(
            fleet,
            endpoints,
            suite,
            on_results=write,
            load_shape=load_shape,
            concurrency=concurrency,
            stop_flag=stop_flag,
            handle_signals=handle_signals,
            repeat=repeat,
        )
        status = "aborted" if summary.interrupted else "completed"
    finally:
        store.finish_run(run_id, status)
    return StoredRound(run_id, suite.name, suite.version, status, summary)
