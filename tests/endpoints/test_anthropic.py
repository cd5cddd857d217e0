"""The `anthropic-messages` flavour against a local fake of the Messages API's wire format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from canary.config.fleet import EndpointConfig, Limits
from canary.endpoints import AnthropicMessages, make_client
from canary.probes.model import Message, Probe
from canary.records import ResultRecord
from canary.store import open_store
from tests.support.anthropic_fake import FakeAnthropic, serve_anthropic
from tests.support.cli import invoke, write_suite

KEY_ENV = "CANARY_TEST_ANTHROPIC_KEY"
KEY = "sk-ant-test-0123456789"
FAST = Limits(max_retries=1, backoff_s=0, backoff_max_s=0, timeout_s=10)
LABELS = {"endpoint": "claude", "model": "claude-test"}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    monkeypatch.setenv(KEY_ENV, KEY)
    with serve_anthropic(KEY) as server:
        yield server


def endpoint(fake: FakeAnthropic, **kw: Any) -> EndpointConfig:
    fields: dict[str, Any] = {
        "name": "claude",
        "base_url": fake.base_url,
        "flavour": "anthropic-messages",
        "model": "claude-test",
        "api_key_env": KEY_ENV,
        **kw,
    }
    return EndpointConfig(**fields)


async def send(config: EndpointConfig, probe: Probe) -> ResultRecord:
    async with make_client(config, FAST) as client:
        return await client.send(probe, session_id="sess-1", labels=LABELS)


def ask(text: str, **params: Any) -> Probe:
    return Probe(id="p", prompt=text, params=params)


async def test_a_probe_becomes_a_messages_request_and_the_reply_a_record(
    fake: FakeAnthropic,
) -> None:
    probe = Probe(
        id="p",
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="system", content="Answer in English."),
            Message(role="user", content="Say hello"),
        ],
        params={
            "max_tokens": 16,
            "top_k": 5,
            "stop": ["\n\n"],
            "seed": 3,
            "logprobs": True,
            "top_logprobs": 2,
        },
    )
    record = await send(endpoint(fake), probe)

    assert record.ok, record.error_detail
    assert (record.output_text, record.finish_reason, record.tokens) == (
        "Hello world",
        "stop",
        None,
    )
    assert record.usage == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    (seen,) = fake.requests
    assert (
        seen.body
        == record.request
        == {
            "model": "claude-test",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Say hello"}],
            "temperature": 0.0,
            "metadata": {"user_id": "sess-1"},
            "system": "Be brief.\n\nAnswer in English.",
            "top_k": 5,
            "stop_sequences": ["\n\n"],
        }
    )  # no logprobs, top_logprobs, seed or user: the API has none of them
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers


def test_the_flavour_is_registered_and_never_asks_logprobs() -> None:
    config = EndpointConfig(
        name="c", base_url="http://127.0.0.1:9/v1", flavour="anthropic-messages", model="m"
    )
    client = make_client(config, FAST)
    assert isinstance(client, AnthropicMessages)
    assert client.url == "http://127.0.0.1:9/v1/messages"
    assert client.logprobs_capable is False


async def test_top_p_is_sent_only_when_it_filters(fake: FakeAnthropic) -> None:
    record = await send(endpoint(fake), ask("hi", top_p=0.9, temperature=0.7))
    assert record.ok, record.error_detail
    assert (record.request["top_p"], record.request["temperature"]) == (0.9, 0.7)


@pytest.mark.parametrize(
    ("directive", "finish", "text"),
    [
        ("", "stop", "Hello world"),
        ("[[stopseq]]", "stop", "Hello world"),
        ("[[maxtokens]]", "length", "Hello world"),
        ("[[tooluse]]", "tool_calls", "Let me look."),
    ],
)
async def test_stop_reasons_map_to_finish_reasons(
    fake: FakeAnthropic, directive: str, finish: str, text: str
) -> None:
    record = await send(endpoint(fake), ask(f"go {directive}", stop=["END"]))
    assert record.ok, record.error_detail
    assert (record.finish_reason, record.output_text) == (finish, text)


async def test_overloaded_529_is_retried_like_a_5xx(fake: FakeAnthropic) -> None:
    recovered = await send(endpoint(fake), ask("once [[overloaded:1]]"))
    assert recovered.ok and recovered.attempts == 2

    down = await send(endpoint(fake), ask("always [[overloaded:always]]"))
    assert (down.error_kind, down.status_code, down.attempts) == ("http_5xx", 529, 2)
    assert down.error_detail == "HTTP 529: overloaded_error: Overloaded"


async def test_no_key_or_a_wrong_auth_style_is_a_401_row(fake: FakeAnthropic) -> None:
    keyless = await send(endpoint(fake, api_key_env=None), ask("hi"))
    assert (keyless.error_kind, keyless.status_code) == ("http_4xx", 401)
    assert keyless.error_detail == "HTTP 401: authentication_error: x-api-key header is required"
    assert "x-api-key" not in fake.requests[-1].headers

    bearer = await send(endpoint(fake, auth="bearer"), ask("hi"))
    assert bearer.status_code == 401
    assert fake.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in (bearer.error_detail or "")


async def test_headers_override_the_version_and_drop_params_apply(fake: FakeAnthropic) -> None:
    config = endpoint(fake, headers={"Anthropic-Version": "2024-01-01"}, drop_params=["metadata"])
    record = await send(config, ask("hi"))
    assert record.ok, record.error_detail
    seen = fake.requests[-1]
    assert seen.headers["anthropic-version"] == "2024-01-01"
    assert "metadata" not in seen.body


def test_the_fake_refuses_what_the_real_api_refuses(fake: FakeAnthropic) -> None:
    """The fake's own checks, so the tests above prove something: version, fields, range."""
    url = fake.base_url + "/messages"
    body = {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    versioned = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    no_version = httpx.post(url, json=body, headers={"x-api-key": KEY})
    assert no_version.status_code == 400
    assert no_version.json()["error"]["message"] == "anthropic-version: header is required"
    for bad in ({"logprobs": True}, {"seed": 1}, {"temperature": 1.5}):
        reply = httpx.post(url, json={**body, **bad}, headers=versioned)
        assert reply.status_code == 400, bad
        assert reply.json()["error"]["type"] == "invalid_request_error"
    assert httpx.post(url, json=body, headers=versioned).status_code == 200


async def test_a_hostile_error_body_still_gives_a_detail(fake: FakeAnthropic) -> None:
    """An error body that is not the API's shape is quoted, as for any flavour."""
    client = make_client(endpoint(fake), FAST)
    assert client.error_message(b"[" * 50_000) is None
    assert client.error_message(b'{"error": {"type": 5}}') is None
    assert client.error_message(b'{"error": {"message": "m"}}') == "m"
    await client.aclose()


def test_canary_run_stores_anthropic_rows(
    fake: FakeAnthropic, tmp_path: Path, sqlite_url: str
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "defaults: {max_retries: 1, backoff_s: 0, backoff_max_s: 0}\n"
        "endpoints:\n"
        f"  - {{name: claude, base_url: '{fake.base_url}', flavour: anthropic-messages,\n"
        f"      model: claude-test, api_key_env: {KEY_ENV}, labels: {{pool: hosted}},\n"
        "      record_headers: [request-id]}\n"
    )
    suite = write_suite(
        tmp_path / "s.jsonl",
        [
            {"id": "hello", "prompt": "Say hello"},
            {"id": "busy", "prompt": "retry [[overloaded:1]]"},
            {"id": "lp", "prompt": "logprobs", "params": {"logprobs": True, "top_logprobs": 3}},
        ],
    )
    code, output = invoke("run", "-f", str(fleet), "--suite", str(suite), "--db", sqlite_url)
    assert code == 0, output

    store = open_store(sqlite_url)
    try:
        (run,) = store.list_runs()
        rows = store.results_for_run(run.id)
    finally:
        store.close()
    assert sorted(r.probe_id for r in rows) == ["busy", "hello", "lp"]
    assert all(r.ok and r.output_text == "Hello world" for r in rows), rows
    assert {r.probe_id: r.attempts for r in rows} == {"busy": 2, "hello": 1, "lp": 1}
    assert all("logprobs" not in r.request and r.tokens is None for r in rows)
    # The `request-id` header of each reply is its own cohort label.
    assert {r.labels["request_id"] for r in rows} == {
        r.response_headers["request-id"] for r in rows
    }
    assert all(r.labels["pool"] == "hosted" and r.labels["endpoint"] == "claude" for r in rows)
    assert KEY not in json.dumps([r.to_dict() for r in rows])
