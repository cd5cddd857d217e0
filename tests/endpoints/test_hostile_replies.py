"""Wrong types and non-finite numbers in a reply: one rule for each, the same in both formats."""

from __future__ import annotations

import math
from typing import Any

import pytest

from canary.config.fleet import EndpointConfig, Limits
from canary.endpoints import MalformedResponse, OpenAIChat, OpenAICompletions
from canary.probes.model import Probe
from canary.records import TokenLogprob
from canary.sanitize import secret_envs
from tests.support.openai_server import FakeOpenAI

ENDPOINT = EndpointConfig(name="e1", base_url="http://127.0.0.1:9/v1", model="m")
NAN, INF = math.nan, math.inf


def chat(**choice: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"content": "x"}, "finish_reason": "stop", **choice}]}


def chat_logprobs(*content: Any) -> dict[str, Any]:
    return chat(logprobs={"content": list(content)})


def completion(**logprobs: Any) -> dict[str, Any]:
    return {"choices": [{"text": "ab", "finish_reason": "stop", "logprobs": logprobs}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (chat(finish_reason={"slice": [1]}), "finish_reason is JSON object, not a string"),
        (chat(finish_reason=3), "finish_reason is JSON number"),
        (chat_logprobs({"token": 5, "logprob": -1.0}), r"content\[0\].token is JSON number"),
        (chat_logprobs("tok"), r"content\[0\] is not an object"),
        (chat_logprobs({"token": "a", "top_logprobs": {"a": 1}}), "not a list of objects"),
        (
            chat_logprobs({"token": "a", "top_logprobs": [{"token": None, "logprob": -1}]}),
            r"top_logprobs\[0\].token is JSON null",
        ),
    ],
)
def test_chat_wrong_types_are_malformed(body: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        OpenAIChat(ENDPOINT, Limits()).parse_response(body)


@pytest.mark.parametrize(
    ("logprobs", "message"),
    [
        ({"tokens": ["a", ["b"]]}, r"tokens\[1\] is JSON array"),
        ({"tokens": ["a"], "top_logprobs": ["a"]}, r"top_logprobs\[0\] is not an object"),
        ({"tokens": ["a"], "token_logprobs": "a"}, "are not lists"),
    ],
)
def test_completions_wrong_types_are_malformed(logprobs: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        OpenAICompletions(ENDPOINT, Limits()).parse_response(completion(**logprobs))
    with pytest.raises(MalformedResponse, match="finish_reason is JSON array"):
        OpenAICompletions(ENDPOINT, Limits()).parse_response(
            {"choices": [{"text": "ab", "finish_reason": ["stop"]}]}
        )


def test_chat_non_finite_logprobs_are_missing_and_counted() -> None:
    parsed = OpenAIChat(ENDPOINT, Limits()).parse_response(
        chat_logprobs(
            {
                "token": "a",
                "logprob": NAN,
                "top_logprobs": [
                    {"token": "a", "logprob": INF},
                    {"token": "b", "logprob": -1.0},
                    {"token": "c", "logprob": "-2"},
                    {"token": "d", "logprob": True},
                    {"token": "e", "logprob": None},
                ],
            },
            {"token": "b", "logprob": 10**400},
        )
    )
    assert parsed.tokens == [TokenLogprob("a", None, {"b": -1.0}), TokenLogprob("b", None, {})]
    assert parsed.dropped_logprobs == 5  # NaN, Infinity, "-2", true, 10**400; null is just absent


def test_completions_non_finite_logprobs_are_missing_and_counted() -> None:
    parsed = OpenAICompletions(ENDPOINT, Limits()).parse_response(
        completion(
            tokens=["a", "b"],
            token_logprobs=[None, -INF],
            top_logprobs=[None, {"b": NAN, "c": -2}],
        )
    )
    assert parsed.tokens == [TokenLogprob("a", None), TokenLogprob("b", None, {"c": -2.0})]
    assert parsed.dropped_logprobs == 2
    assert all(
        v is None or math.isfinite(v)
        for t in parsed.tokens or []
        for v in [t.logprob, *t.top.values()]
    )


def test_the_client_registers_its_api_key_variable() -> None:
    name = "CANARY_TEST_CLIENT_KEY_REGISTERED"
    endpoint = ENDPOINT.model_copy(update={"api_key_env": name})
    assert name not in secret_envs()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(name, "sk-abcdef")
        OpenAIChat(endpoint, Limits())
    assert name in secret_envs()


async def test_an_echoed_key_is_scrubbed_from_the_error_detail(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANARY_TEST_CLIENT_KEY", "sk-echoed-0123456789")
    endpoint = EndpointConfig(
        name="e2", base_url=server.base_url, model="m", api_key_env="CANARY_TEST_CLIENT_KEY"
    )
    async with OpenAIChat(endpoint, Limits(max_retries=0)) as client:
        record = await client.send(
            Probe(id="p", prompt="[[unauthorized]]"), session_id="s", labels={}
        )
    assert record.error_kind == "http_4xx"
    assert "sk-echoed" not in (record.error_detail or "") and "***" in (record.error_detail or "")
