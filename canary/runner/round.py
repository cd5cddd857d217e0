"""One round: every probe × repeat of a suite sent to every endpoint, results handed on in batches.

Endpoints run concurrently, each bounded by its own concurrency and (shared) rate limit. Probes
that share a `session` name form one chain, sent in file order with one session id, so sticky
routing can be checked; every other probe × repeat is an independent unit of work.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from canary.config.fleet import EndpointConfig, FleetConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultRecord
from canary.runner.isolation import crashed_record, store_isolated
from canary.runner.summary import EndpointStats, RoundSummary, StatsTally
from canary.sanitize import one_line

if TYPE_CHECKING:
    # canary.endpoints imports canary.records, so the runner package must not import
    # the endpoints at module level.
    from canary.endpoints import EndpointClient

__all__ = [
    "EndpointStats",
    "RoundSummary",
    "plan_units",
    "run_round",
    "run_round_sync",
]

OnResults = Callable[[list[ResultRecord]], None]


logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Send:
    probe: Probe
    repeat_index: int
    session_id: str


def plan_units(suite: Suite) -> list[list[_Send]]:
    """The round's work for one endpoint, as chains sent one request at a time.

    A session's chain holds its probes in file order (each probe's repeats back to back) under
    one fresh session id. Any other probe gets one session id for all its repeats, and each
    repeat is its own chain of one. Session chains come first, longest first, so the sequential
    tail overlaps the parallel work instead of trailing after it.
    """
    sessions: dict[str, list[_Send]] = {}
    session_ids: dict[str, str] = {}
    singles: list[list[_Send]] = []
    for probe in suite.probes:
        if probe.session is None:
            sid = uuid.uuid4().hex
            singles.extend([_Send(probe, r, sid)] for r in range(probe.repeat))
            continue
        sid = session_ids.setdefault(probe.session, uuid.uuid4().hex)
        chain = sessions.setdefault(probe.session, [])
        chain.extend(_Send(probe, r, sid) for r in range(probe.repeat))
    return sorted(sessions.values(), key=len, reverse=True) + singles


class _BatchSink:
    """Hands records to the synchronous `on_results` in batches, one write at a time.

    Writes run in a worker thread so the event loop keeps sending while the DB works; the lock
    (FIFO) keeps writes from interleaving and in the order their batches filled. Batches mix
    endpoints, so one unstorable reply must not cost the others: see `store_isolated`. Each
    stored record is counted in its endpoint's tally, so the summary says what was stored.
    """

    def __init__(
        self, on_results: OnResults, batch_size: int, tallies: dict[str, StatsTally]
    ) -> None:
        self._on_results = on_results
        self._batch_size = batch_size
        self._tallies = tallies
        self._pending: list[ResultRecord] = []
        self._lock = asyncio.Lock()

    async def add(self, record: ResultRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= self._batch_size:
            batch = self._pending[: self._batch_size]
            del self._pending[: self._batch_size]
            await self._write(batch)

    async def flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._batch_size]
            del self._pending[: self._batch_size]
            await self._write(batch)

    async def _write(self, batch: list[ResultRecord]) -> None:
        async with self._lock:
            stored = await asyncio.to_thread(store_isolated, self._on_results, batch)
        for record in stored:
            self._tallies[record.endpoint].add(record)


async def run_round(
    fleet: FleetConfig,
    endpoints: Sequence[EndpointConfig],
    suite: Suite,
    *,
    on_results: OnResults,
    load_shape: str = "probe",
    concurrency: int | None = None,
    batch_size: int = 32,
    stop_event: asyncio.Event | None = None,
    repeat: int = 1,
) -> RoundSummary:
    """Send `suite` to `endpoints` once and return what happened.

    Per-request failures become error records, never exceptions, and so does a reply the store
    refuses (`store_isolated`: one `malformed` row in its place, the rest of its batch stored).
    Raises `ConfigError` before sending anything if an endpoint is misconfigured (unknown
    flavour, missing API key variable), and re-raises what `on_results` raises when the store
    fails as a whole (even a minimal error record cannot be written), since records that cannot
    be stored must not be silently dropped. Setting `stop_event` stops new requests; in-flight
    ones finish and are flushed, and the summary says `interrupted`.
    """
    from canary.endpoints import make_client

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    started_at = datetime.now(UTC)
    start = time.perf_counter()
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    planned = sum(p.repeat for p in suite.probes) * repeat

    clients: list[EndpointClient] = []
    try:
        for endpoint in endpoints:
            limits = fleet.limits_for(endpoint)
            if concurrency is not None and concurrency > limits.concurrency:
                logger.info(  # `canary run` prints its own notice; the daemon documents the cap
                    "endpoint %s: load of %d in flight is capped by its concurrency limit %d",
                    endpoint.name,
                    concurrency,
                    limits.concurrency,
                )
            clients.append(make_client(endpoint, limits))

        tallies = [StatsTally(c.endpoint.name, planned) for c in clients]
        sink = _BatchSink(on_results, batch_size, {t.endpoint: t for t in tallies})
        tasks = [
            asyncio.create_task(
                _run_endpoint(
                    client,
                    [unit for _ in range(repeat) for unit in plan_units(suite)],
                    load_shape,
                    sink,
                    stop_event,
                    workers=concurrency or client.limits.concurrency,
                )
            )
            for client in clients
        ]
        try:
            await _wait_all(tasks)
        finally:
            for task in tasks:
                task.cancel()
        await sink.flush()
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

    stats = tuple(t.stats() for t in tallies)
    stopped = stop_event is not None and stop_event.is_set()
    return RoundSummary(
        suite=suite.name,
        suite_version=suite.version,
        load_shape=load_shape,
        started_at=started_at,
        duration_s=time.perf_counter() - start,
        endpoints=stats,
        interrupted=stopped and any(s.sent < s.planned for s in stats),
    )


def run_round_sync(
    fleet: FleetConfig,
    endpoints: Sequence[EndpointConfig],
    suite: Suite,
    *,
    on_results: OnResults,
    load_shape: str = "probe",
    concurrency: int | None = None,
    batch_size: int = 32,
    handle_signals: bool = True,
    stop_flag: threading.Event | None = None,
    repeat: int = 1,
) -> RoundSummary:
    """`run_round` for synchronous callers (the CLI, a scheduler's worker thread).

    With `handle_signals`, in the main thread, the first SIGINT/SIGTERM stops the round
    gracefully (in-flight requests finish and are flushed, the summary says `interrupted`) and a
    second one cancels it outright. Setting `stop_flag` (from any thread, e.g. a daemon's
    shutdown) stops the round gracefully the same way.
    """

    async def main() -> RoundSummary:
        stop = asyncio.Event()
        forced = asyncio.Event()
        installed = _install_stop_signals(stop, forced) if handle_signals else []
        watcher = asyncio.create_task(_watch_flag(stop_flag, stop)) if stop_flag else None
        try:
            return await run_round(
                fleet,
                endpoints,
                suite,
                on_results=on_results,
                load_shape=load_shape,
                concurrency=concurrency,
                batch_size=batch_size,
                stop_event=stop,
                repeat=repeat,
            )
        except asyncio.CancelledError:
            if forced.is_set():
                raise KeyboardInterrupt from None
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


async def _watch_flag(flag: threading.Event, stop: asyncio.Event) -> None:
    """Mirror a thread-safe flag into the round's stop event (checked every 50 ms)."""
    while not flag.is_set():
        await asyncio.sleep(0.05)
    stop.set()


def _install_stop_signals(stop: asyncio.Event, forced: asyncio.Event) -> list[signal.Signals]:
    """First SIGINT/SIGTERM sets `stop`; a second sets `forced` and cancels the round."""
    if threading.current_thread() is not threading.main_thread():
        return []
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            forced.set()
            task.cancel()
        stop.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):  # not on this platform or loop
            continue
        installed.append(sig)
    return installed


async def _run_endpoint(
    client: EndpointClient,
    units: list[list[_Send]],
    load_shape: str,
    sink: _BatchSink,
    stop_event: asyncio.Event | None,
    *,
    workers: int,
) -> None:
    labels = {**client.endpoint.cohort_labels(), "load": load_shape}
    queue = deque(units)

    async def worker() -> None:
        while queue:
            for send in queue.popleft():
                if stop_event is not None and stop_event.is_set():
                    return
                record = await _send(client, send, labels)
                await sink.add(record)

    # The endpoint's process-wide gate caps what is really in flight across rounds.
    await _wait_all([asyncio.create_task(worker()) for _ in range(min(workers, len(units)))])


async def _send(client: EndpointClient, send: _Send, labels: dict[str, str]) -> ResultRecord:
    """`client.send`, with a bug in handling one reply turned into that request's error row.

    `send` never raises by contract; should a flavour's code break it anyway, the round loses
    one request (recorded as `malformed`, the traceback logged), not every endpoint's work.
    """
    started_at = datetime.now(UTC)
    start = time.perf_counter()
    try:
        return await client.send(
            send.probe, session_id=send.session_id, repeat_index=send.repeat_index, labels=labels
        )
    except Exception as exc:
        logger.warning(
            "endpoint %s, probe %s: could not process the reply",
            one_line(client.endpoint.name),
            one_line(send.probe.id),
            exc_info=True,
        )
        return crashed_record(
            client.endpoint.name,
            labels,
            (send.probe.id, send.repeat_index, send.session_id),
            started_at,
            (time.perf_counter() - start) * 1000.0,
            exc,
        )


async def _wait_all(tasks: list[asyncio.Task[None]]) -> None:
    """Await every task; on the first failure cancel the rest and raise it (no ExceptionGroup)."""
    if not tasks:
        return
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
