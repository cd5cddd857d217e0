"""run_round against real HTTP servers: batching, sessions, limits, failures and graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from canary.config.fleet import EndpointConfig, FleetConfig, Limits, LimitsOverride
from canary.errors import ConfigError
from canary.probes.model import Probe, Suite
from canary.runner import ResultRecord, RoundSummary, run_round, run_round_sync
from canary.runner.round import plan_units
from tests.support.openai_server import FakeOpenAI, serve_openai

DEFAULTS = Limits(
    timeout_s=2.0,
    connect_timeout_s=1.0,
    max_retries=1,
    backoff_s=0.01,
    backoff_max_s=0.05,
    max_response_bytes=64 * 1024,
)


def endpoint(name: str, base_url: str, **kw: Any) -> EndpointConfig:
    return EndpointConfig(
        name=name, base_url=base_url, model="tiny", labels={"pool": f"pool-{name}"}, **kw
    )


def fleet(*endpoints: EndpointConfig, **defaults: Any) -> FleetConfig:
    return FleetConfig(endpoints=list(endpoints), defaults=DEFAULTS.model_copy(update=defaults))


def suite(*probes: Probe) -> Suite:
    return Suite(name="smoke", probes=list(probes))


def discard(batch: list[ResultRecord]) -> None:
    pass


class Collector:
    """An `on_results` that checks it is called off the event loop and never concurrently."""

    def __init__(self, delay_s: float = 0.0, fail_after: int | None = None) -> None:
        self.batches: list[list[ResultRecord]] = []
        self.delay_s = delay_s
        self.fail_after = fail_after
        self.busy = False
        self.overlapped = False
        self.threads: set[str] = set()

    def __call__(self, batch: list[ResultRecord]) -> None:
        if self.busy:
            self.overlapped = True
        self.busy = True
        try:
            self.threads.add(threading.current_thread().name)
            if self.fail_after is not None and len(self.batches) >= self.fail_after:
                raise RuntimeError("database is locked")
            time.sleep(self.delay_s)
            self.batches.append(batch)
        finally:
            self.busy = False

    @property
    def records(self) -> list[ResultRecord]:
        return [r for batch in self.batches for r in batch]


@pytest.fixture
def two_servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with serve_openai(served_by="pool-a") as a, serve_openai(served_by="pool-b") as b:
        yield a, b


async def test_every_probe_repeat_reaches_every_endpoint(
    two_servers: tuple[FakeOpenAI, FakeOpenAI],
) -> None:
    a, b = two_servers
    eps = [endpoint("a", a.base_url), endpoint("b", b.base_url)]
    probes = [Probe(id=f"p{i}", prompt=f"question {i}") for i in range(5)]
    probes.append(Probe(id="rep", prompt="repeat me", repeat=7))
    sink = Collector(delay_s=0.01)

    summary = await run_round(
        fleet(*eps), eps, suite(*probes), on_results=sink, load_shape="steady", batch_size=4
    )

    assert (summary.planned, summary.sent, summary.ok, summary.failed) == (24, 24, 24, 0)
    assert not summary.interrupted and summary.load_shape == "steady"
    assert summary.suite == "smoke" and summary.suite_version == suite(*probes).version
    for name, server in (("a", a), ("b", b)):
        stats = summary.endpoint(name)
        assert (stats.sent, stats.ok, stats.errors) == (12, 12, {})
        assert stats.p50_ms is not None and stats.p95_ms is not None
        assert 0 < stats.p50_ms <= stats.p95_ms
        assert len(server.requests) == 12

    records = sink.records
    assert len(records) == 24
    assert Counter((r.endpoint, r.probe_id) for r in records)[("a", "rep")] == 7
    repeats = sorted(r.repeat_index for r in records if r.endpoint == "b" and r.probe_id == "rep")
    assert repeats == list(range(7))
    assert {r.served_by for r in records if r.endpoint == "b"} == {"pool-b"}
    assert records[0].labels == {
        "pool": f"pool-{records[0].endpoint}",
        "endpoint": records[0].endpoint,
        "model": "tiny",
        "load": "steady",
    }
    # batches of at most batch_size, full ones while running, written one at a time off-loop
    sizes = [len(batch) for batch in sink.batches]
    assert all(size == 4 for size in sizes[:-1]) and 1 <= sizes[-1] <= 4
    assert not sink.overlapped
    assert threading.current_thread().name not in sink.threads


async def test_each_failure_mode_is_an_error_row_and_the_round_completes() -> None:
    cases = {
        "slow": ("[[slow:1.5]]", "timeout"),
        "down": ("[[down]]", "http_5xx"),
        "limited": ("[[ratelimit:0:always]]", "http_429"),
        "badreq": ("[[badrequest]]", "http_4xx"),
        "notjson": ("[[notjson]]", "malformed"),
        "nochoices": ("[[nochoices]]", "malformed"),
        "big": ("[[oversized:100000]]", "oversized"),
        "cut": ("[[disconnect]]", "disconnected"),
        "fine": ("all good", None),
    }
    probes = [Probe(id=pid, prompt=f"{directive} {pid}") for pid, (directive, _) in cases.items()]
    sink = Collector()
    with serve_openai() as server:
        eps = [endpoint("a", server.base_url), endpoint("down", "http://127.0.0.1:9/v1")]
        summary = await run_round(
            fleet(*eps, timeout_s=0.3), eps, suite(*probes), on_results=sink, batch_size=3
        )

    kinds = {r.probe_id: r.error_kind for r in sink.records if r.endpoint == "a"}
    assert kinds == {pid: kind for pid, (_, kind) in cases.items()}
    unreachable = summary.endpoint("down")
    assert unreachable.errors == {"connect": len(cases)} and unreachable.ok == 0
    assert unreachable.p50_ms is None
    assert summary.endpoint("a").ok == 1 and summary.sent == 2 * len(cases)
    assert summary.errors["connect"] == len(cases) and summary.errors["malformed"] == 2
    assert not summary.all_unreachable


async def test_sessions_keep_one_id_and_file_order() -> None:
    probes = [
        Probe(id="t1", prompt="turn 1", session="conv"),
        Probe(id="x1", prompt="solo 1", repeat=2),
        Probe(id="t2", prompt="turn 2", session="conv", repeat=2),
        Probe(id="u1", prompt="other 1", session="other"),
        Probe(id="t3", prompt="turn 3", session="conv"),
        Probe(id="x2", prompt="solo 2"),
    ]
    sink = Collector()
    # slow answers and high concurrency: ordering must come from the chain, not from luck
    with serve_openai(latency_s=0.02) as server:
        eps = [endpoint("a", server.base_url), endpoint("b", server.base_url)]
        await run_round(fleet(*eps, concurrency=8), eps, suite(*probes), on_results=sink)
        await run_round(fleet(*eps, concurrency=8), eps, suite(*probes), on_results=sink)

    conv = [r for r in server.requests if r.prompt.startswith("turn")]
    by_session: dict[str, list[str]] = {}
    for seen in conv:
        by_session.setdefault(seen.headers["x-session-id"], []).append(seen.prompt)
    # one id per (endpoint, session, round): 2 endpoints × 2 rounds, each in file order
    assert len(by_session) == 4
    assert all(turns == ["turn 1", "turn 2", "turn 2", "turn 3"] for turns in by_session.values())
    assert all(len(sid) == 32 for sid in by_session)

    records = sink.records
    conv_ids = {r.session_id for r in records if r.probe_id.startswith("t")}
    other_ids = {r.session_id for r in records if r.probe_id == "u1"}
    solo_ids = {r.session_id for r in records if r.probe_id.startswith("x")}
    assert conv_ids == set(by_session)
    assert not (conv_ids & other_ids) and not (conv_ids & solo_ids)
    # a probe outside any session: one id per probe and endpoint, shared by its repeats
    x1 = {(r.endpoint, r.session_id) for r in records if r.probe_id == "x1"}
    assert len(x1) == 4 and len(solo_ids) == 8


def test_plan_units_puts_sessions_first() -> None:
    units = plan_units(
        suite(
            Probe(id="a", prompt="a", repeat=2),
            Probe(id="s1", prompt="s", session="short"),
            Probe(id="l1", prompt="l", session="long", repeat=3),
        )
    )
    assert [[s.probe.id for s in unit] for unit in units] == [["l1"] * 3, ["s1"], ["a"], ["a"]]
    assert len({s.session_id for s in units[0]}) == 1
    assert units[2][0].session_id == units[3][0].session_id


async def test_concurrency_override_bounds_in_flight() -> None:
    with serve_openai(latency_s=0.05) as server:
        eps = [endpoint("a", server.base_url)]
        probe = Probe(id="p", prompt="hi", repeat=16)
        summary = await run_round(
            fleet(*eps, concurrency=8), eps, suite(probe), on_results=Collector(), concurrency=2
        )
    assert summary.ok == 16
    assert server.max_in_flight == 2


async def test_rate_limit_holds_across_overlapping_rounds(server: FakeOpenAI) -> None:
    limited = endpoint("a", server.base_url, limits=LimitsOverride(rate_limit_rps=25.0))
    f = fleet(limited, concurrency=8)
    probe = Probe(id="p", prompt="hi", repeat=6)
    await asyncio.gather(
        run_round(f, [limited], suite(probe), on_results=Collector()),
        run_round(f, [limited], suite(probe), on_results=Collector()),
    )
    arrivals = sorted(r.at for r in server.requests)
    assert len(arrivals) == 12
    # 12 starts at 25/s take 11 × 40 ms = 0.44 s however the rounds interleave; unlimited, the
    # lot arrives within a few ms. The slack absorbs the first connection's setup on a busy CPU.
    assert arrivals[-1] - arrivals[0] >= 0.3


async def test_stop_event_interrupts_cleanly() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    sink = Collector()

    def on_results(batch: list[ResultRecord]) -> None:
        sink(batch)
        loop.call_soon_threadsafe(stop.set)  # shut down once the first batch is stored

    with serve_openai(latency_s=0.05) as server:
        eps = [endpoint("a", server.base_url)]
        summary = await run_round(
            fleet(*eps, concurrency=2),
            eps,
            suite(Probe(id="p", prompt="hi", repeat=60)),
            on_results=on_results,
            batch_size=2,
            stop_event=stop,
        )
        seen = len(server.requests)

    assert summary.interrupted
    assert 2 <= summary.sent < summary.planned == 60
    # everything in flight finished and was flushed; nothing was sent after the stop
    assert len(sink.records) == summary.sent == seen
    assert all(r.ok for r in sink.records)


async def test_a_stop_after_all_was_sent_is_not_an_interruption(server: FakeOpenAI) -> None:
    stop = asyncio.Event()
    eps = [endpoint("a", server.base_url)]
    summary = await run_round(
        fleet(*eps),
        eps,
        suite(Probe(id="p", prompt="hi")),
        on_results=discard,
        stop_event=stop,
    )
    assert not summary.interrupted and summary.sent == 1


async def test_a_failing_on_results_propagates(server: FakeOpenAI) -> None:
    eps = [endpoint("a", server.base_url)]
    with pytest.raises(RuntimeError, match="database is locked"):
        await run_round(
            fleet(*eps),
            eps,
            suite(Probe(id="p", prompt="hi", repeat=10)),
            on_results=Collector(fail_after=1),
            batch_size=2,
        )


async def test_missing_key_fails_before_anything_is_sent(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CANARY_NO_SUCH_KEY", raising=False)
    eps = [
        endpoint("a", server.base_url),
        endpoint("b", server.base_url, api_key_env="CANARY_NO_SUCH_KEY"),
    ]
    with pytest.raises(ConfigError, match="endpoint b: environment variable CANARY_NO_SUCH_KEY"):
        await run_round(fleet(*eps), eps, suite(Probe(id="p", prompt="hi")), on_results=discard)
    assert server.requests == []


def test_run_round_sync(server: FakeOpenAI) -> None:
    eps = [endpoint("a", server.base_url)]
    sink = Collector()
    summary = run_round_sync(
        fleet(*eps), eps, suite(Probe(id="p", prompt="hi", repeat=3)), on_results=sink
    )
    assert isinstance(summary, RoundSummary)
    assert summary.ok == 3 and len(sink.records) == 3


def test_all_unreachable() -> None:
    eps = [endpoint("a", "http://127.0.0.1:9/v1")]
    summary = run_round_sync(
        fleet(*eps, max_retries=0),
        eps,
        suite(Probe(id="p", prompt="hi")),
        on_results=discard,
    )
    assert summary.all_unreachable and summary.errors == {"connect": 1}


def test_sync_round_stops_gracefully_on_sigint() -> None:
    sink = Collector()

    def interrupt_after_first_batch(batch: list[ResultRecord]) -> None:
        sink(batch)
        if len(sink.batches) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with serve_openai(latency_s=0.05) as server:
        eps = [endpoint("a", server.base_url)]
        summary = run_round_sync(
            fleet(*eps, concurrency=2),
            eps,
            suite(Probe(id="p", prompt="hi", repeat=60)),
            on_results=interrupt_after_first_batch,
            batch_size=2,
        )
    assert summary.interrupted and 2 <= summary.sent < 60
    assert len(sink.records) == summary.sent
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
