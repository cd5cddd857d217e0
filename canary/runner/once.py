"""One round, stored: the cron-friendly unit of work behind `canary run --once`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from canary.config.fleet import EndpointConfig, FleetConfig
from canary.probes.model import Suite
from canary.records import ResultRecord
from canary.store import Store
from canary.store.liveness import HEARTBEAT_EVERY

if TYPE_CHECKING:
    from canary.runner.round import RoundSummary

logger = logging.getLogger(__name__)


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
    heartbeat_every: float = HEARTBEAT_EVERY.total_seconds(),
) -> StoredRound:
    """Send ``suite`` to ``endpoints`` once, writing every result as it completes.

    Results are written in batches, each in its own transaction, so an interrupted round keeps
    every batch it finished and the run row says `aborted`. While the round runs, a thread
    refreshes the run's heartbeat every ``heartbeat_every`` seconds, even when no endpoint
    answers, so a killed process's run can be told from a slow one (`canary.store.liveness`).
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
        with RunHeartbeat(store, run_id, heartbeat_every):
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


class RunHeartbeat:
    """Refreshes a run's heartbeat from a daemon thread until the block exits.

    A thread, not a beat per saved batch: a round whose endpoints all hang saves nothing for
    minutes, yet its process is alive and its run must not be taken for abandoned.
    """

    def __init__(self, store: Store, run_id: int, every: float) -> None:
        if every <= 0:
            raise ValueError("heartbeat interval must be positive")
        self._store = store
        self._run_id = run_id
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"canary-heartbeat-{run_id}", daemon=True
        )

    def __enter__(self) -> RunHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if not self._store.heartbeat(self._run_id):
                    logger.warning("run %d is no longer running; heartbeat stopped", self._run_id)
                    return
            except Exception as exc:  # a missed beat must never cost the round
                logger.warning("heartbeat of run %d failed: %s", self._run_id, exc)
