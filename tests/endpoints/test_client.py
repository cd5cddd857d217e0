"""EndpointClient against a real HTTP server: every failure becomes a record, never a raise."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from canary.config.fleet import EndpointConfig, Limits
from canary.endpoints import EndpointClient, OpenAIChat, ParsedOutput, make_client
from canary.errors import ConfigError
from canary.probes.model import Probe
from canary.records import ERROR_KINDS, ResultRecord, TokenLogprob
from tests.support.openai_server import FakeOpenAI, serve_openai

FAST = Limits(
    timeout_s=2.0,
    connect_timeout_s=1.0,
    max_retries=2,
    backoff_s=0.01,
    backoff_max_s=0.05,
    max_response_bytes=64 * 1024,
)
FLAVOURS = ["openai-chat", "openai-completions"]
LABELS = {"endpoint": "e1", "model": "m", "load": "probe"}


def endpoint(base_url: str, flavour: str = "openai-chat", **kw: Any) -> EndpointConfig:
    return EndpointConfig(name="e1", base_url=base_url, model="m", flavour=flavour, **kw)


def client(base_url: str, flavour: str = "openai-chat", limits: Limits = FAST, **kw: Any):
    return make_client(endpoint(base_url, flavour, **kw), limits)


def probe(prompt: str, **params: Any) -> Probe:
    return Probe(id="p1", prompt=prompt, params=params)


async def send_one(
    base_url: str, prompt: str, flavour: str = "openai-chat", limits: Limits = FAST, **kw: Any
) -> ResultRecord:
    async with client(base_url, flavour, limits, **kw) as c:
        return await c.send(probe(prompt), session_id="sess-1", labels=LABELS)


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_answer_with_logprobs(server: FakeOpenAI, flavour: str) -> None:
    async with client(server.base_url, flavour) as c:
        p = probe("What is 2+2?", logprobs=True, top_logprobs=2, seed=7)
        record = await c.send(p, session_id="sess-1", repeat_index=3, labels=LABELS)

    assert record.ok, record.error_detail
    assert (record.status_code, record.attempts, record.repeat_index) == (200, 1, 3)
    assert record.output_text == "Hello world"
    assert record.finish_reason == "stop"
    chat = flavour == "openai-chat"  # chat logprobs carry each token's bytes
    assert record.tokens == [
        TokenLogprob(
            "Hello", -0.25, {"Hello": -0.25, "Hi": -2.0}, bytes=b"Hello" if chat else None
        ),
        TokenLogprob(
            " world", -0.5, {" world": -0.5, "Hi": -2.0}, bytes=b" world" if chat else None
        ),
    ]
    assert record.usage == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert record.served_by == "fake-pool-a"
    assert record.response_headers == {"x-served-by": "fake-pool-a"}
    assert record.labels == LABELS and record.session_id == "sess-1" and record.latency_ms > 0

    (seen,) = server.requests
    assert seen.headers["x-session-id"] == "sess-1"
    assert "authorization" not in seen.headers
    assert seen.body == record.request
    assert seen.body["model"] == "m" and seen.body["seed"] == 7 and seen.body["user"] == "sess-1"
    if flavour == "openai-chat":
        assert seen.path == "/v1/chat/completions"
        assert seen.body["messages"] == [{"role": "user", "content": "What is 2+2?"}]
        assert (seen.body["logprobs"], seen.body["top_logprobs"]) == (True, 2)
    else:
        assert seen.path == "/v1/completions"
        assert seen.body["prompt"] == "What is 2+2?" and seen.body["logprobs"] == 2


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_no_logprob_fields_for_endpoints_without_them(server: FakeOpenAI, flavour: str):
    async with client(server.base_url, flavour, supports_logprobs=False) as c:
        p = probe("hi", logprobs=True, top_logprobs=5)
        record = await c.send(p, session_id="s", labels=LABELS)
    assert record.ok and record.tokens is None
    assert not {"logprobs", "top_logprobs"} & set(server.requests[0].body)


async def test_completions_logprobs_without_alternatives(server: FakeOpenAI) -> None:
    async with client(server.base_url, "openai-completions") as c:
        record = await c.send(probe("hi", logprobs=True), session_id="s", labels=LABELS)
    assert server.requests[0].body["logprobs"] == 0
    assert record.tokens == [TokenLogprob("Hello", -0.25), TokenLogprob(" world", -0.5)]


SLOW = FAST.model_copy(update={"timeout_s": 0.3, "max_retries": 0})


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    ("prompt", "limits", "kind", "status", "attempts"),
    [
        ("[[slow:1.5]] a", SLOW, "timeout", None, 1),
        ("[[down]] b", FAST, "http_5xx", 503, 3),
        ("[[ratelimit:0:always]] c", FAST, "http_429", 429, 3),
        ("[[notjson]] d", FAST, "malformed", 200, 1),
        ("[[nochoices]] e", FAST, "malformed", 200, 1),
        ("[[oversized:100000]] f", FAST, "oversized", 200, 1),
        ("[[oversizedchunked:100000]] g", FAST, "oversized", 200, 1),
        ("[[disconnect]] h", FAST, "disconnected", 200, 3),
        ("[[badrequest]] i", FAST, "http_4xx", 400, 1),
        ("[[redirect]] j", FAST, "transport", 307, 1),
    ],
)
async def test_failures_become_error_records(
    server: FakeOpenAI,
    flavour: str,
    prompt: str,
    limits: Limits,
    kind: str,
    status: int | None,
    attempts: int,
) -> None:
    record = await send_one(server.base_url, prompt, flavour, limits)

    assert kind in ERROR_KINDS
    assert (record.error_kind, record.status_code, record.attempts) == (kind, status, attempts)
    assert server.attempts(prompt) == attempts  # retried exactly as often as claimed
    assert record.error_detail and "\n" not in record.error_detail
    assert len(record.error_detail) <= 500
    assert record.output_text is None and record.tokens is None
    assert not record.ok


async def test_connect_failure_is_retried_then_recorded() -> None:
    record = await send_one(closed_port_url(), "hi")
    assert (record.error_kind, record.status_code, record.attempts) == ("connect", None, 3)
    assert record.error_detail and "could not connect" in record.error_detail


async def test_500_then_success_is_retried(server: FakeOpenAI) -> None:
    record = await send_one(server.base_url, "[[fail500:2]] flaky")
    assert record.ok and record.status_code == 200 and record.output_text == "Hello world"
    assert record.attempts == 3 == server.attempts("flaky")


async def test_retries_give_up_after_max_retries(server: FakeOpenAI) -> None:
    limits = FAST.model_copy(update={"max_retries": 1})
    record = await send_one(server.base_url, "[[fail500:2]] flaky", limits=limits)
    assert (record.error_kind, record.status_code, record.attempts) == ("http_5xx", 500, 2)
    assert "HTTP 500" in (record.error_detail or "")


async def test_429_honours_retry_after(server: FakeOpenAI) -> None:
    limits = FAST.model_copy(update={"backoff_max_s": 5.0})
    record = await send_one(server.base_url, "[[ratelimit:1]] busy", limits=limits)
    assert record.ok and record.attempts == 2
    first, second = server.requests
    assert second.at - first.at >= 0.9
    assert record.latency_ms >= 900


async def test_retry_after_is_capped(server: FakeOpenAI) -> None:
    record = await send_one(server.base_url, "[[ratelimit:30]] very busy")
    first, second = server.requests
    assert record.ok and second.at - first.at < 2.0


async def test_api_key_is_sent_but_never_recorded(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("CANARY_TEST_KEY", secret)
    async with client(server.base_url, api_key_env="CANARY_TEST_KEY") as c:
        good = await c.send(probe("hi"), session_id="s", labels=LABELS)
        # a careless server echoes the credentials back in its error body
        bad = await c.send(probe("[[unauthorized]] who"), session_id="s", labels=LABELS)

    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {secret}"] * 2
    assert good.ok
    assert (bad.error_kind, bad.status_code) == ("http_4xx", 401)
    assert "***" in (bad.error_detail or "")
    for record in (good, bad):
        assert secret not in repr(record)
        assert "sk-test" not in str(record.request)


async def test_api_key_is_read_at_send_time(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANARY_TEST_KEY", "first")
    async with client(server.base_url, api_key_env="CANARY_TEST_KEY") as c:
        monkeypatch.setenv("CANARY_TEST_KEY", "rotated")
        await c.send(probe("hi"), session_id="s", labels=LABELS)
    assert server.requests[0].headers["authorization"] == "Bearer rotated"


def test_missing_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_KEY", raising=False)
    with pytest.raises(
        ConfigError, match="endpoint e1: environment variable OPENAI_KEY is not set"
    ):
        make_client(endpoint("http://127.0.0.1:9/v1", api_key_env="OPENAI_KEY"), FAST)


def test_unknown_flavour_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'openai-chat'"):
        make_client(endpoint("http://127.0.0.1:9/v1", "openai-chats"), FAST)


async def test_served_by_header_order_and_absence() -> None:
    with serve_openai(served_by=None) as fake:
        record = await send_one(fake.base_url, "hi")
    assert record.ok and record.served_by is None and record.response_headers == {}

    with serve_openai(served_by="pool-b") as fake:
        record = await send_one(
            fake.base_url, "hi", served_by_headers=["x-backend", "X-Served-By", "server"]
        )
    assert record.served_by == "pool-b"  # the first listed header present wins
    assert record.response_headers == {"x-served-by": "pool-b"}


async def send_many(c: EndpointClient, n: int, prefix: str = "p") -> list[ResultRecord]:
    return await asyncio.gather(
        *(c.send(probe(f"{prefix}{i}"), session_id=f"s{i}", labels=LABELS) for i in range(n))
    )


async def test_concurrency_bound_holds() -> None:
    limits = FAST.model_copy(update={"concurrency": 3})
    with serve_openai(latency_s=0.1) as fake:
        async with client(fake.base_url, limits=limits) as c:
            records = await send_many(c, 12)
    assert all(r.ok for r in records)
    assert 2 <= fake.max_in_flight <= 3


async def test_shared_semaphore_bounds_several_clients() -> None:
    shared = asyncio.Semaphore(2)
    with serve_openai(latency_s=0.1) as fake:
        a = make_client(endpoint(fake.base_url), FAST, semaphore=shared)
        b = make_client(endpoint(fake.base_url), FAST, semaphore=shared)
        async with a, b:
            await asyncio.gather(send_many(a, 6, "a"), send_many(b, 6, "b"))
    assert fake.max_in_flight <= 2


async def test_rate_limit_is_shared_per_endpoint_name(server: FakeOpenAI) -> None:
    limits = FAST.model_copy(update={"rate_limit_rps": 20.0, "concurrency": 8})
    a = client(server.base_url, limits=limits)
    b = client(server.base_url, limits=limits)  # same endpoint name: one bucket
    async with a, b:
        records = await asyncio.gather(send_many(a, 6, "a"), send_many(b, 5, "b"))
    assert all(r.ok for group in records for r in group)
    arrivals = sorted(r.at for r in server.requests)
    # 11 starts at 20/s take 10 × 50 ms = 0.5 s (unlimited: a few ms); slack for a busy CPU
    assert arrivals[-1] - arrivals[0] >= 0.35


class CarelessChat(OpenAIChat):
    """A flavour that indexes without checking: its KeyError must still become a row."""

    def parse_response(self, body: dict[str, Any]) -> ParsedOutput:
        return ParsedOutput(text=body["generated_text"])


async def test_a_careless_flavour_still_yields_a_malformed_record(server: FakeOpenAI) -> None:
    async with CarelessChat(endpoint(server.base_url), FAST) as c:
        record = await c.send(probe("hi"), session_id="s", labels=LABELS)
    assert record.error_kind == "malformed" and record.status_code == 200
    assert "KeyError" in (record.error_detail or "")
