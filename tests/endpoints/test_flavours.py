"""The OpenAI wire formats: request bodies and response parsing, without a network."""

from __future__ import annotations

from typing import Any

import pytest

from canary.config.fleet import EndpointConfig, Limits
from canary.endpoints import (
    EndpointClient,
    MalformedResponse,
    OpenAIChat,
    OpenAICompletions,
    ParsedOutput,
    flavours,
)
from canary.probes.model import Message, Probe
from canary.records import TokenLogprob

ENDPOINT = EndpointConfig(name="e1", base_url="http://127.0.0.1:9/v1", model="m")


def test_builtin_flavours_are_registered() -> None:
    assert flavours.get("openai-chat") is OpenAIChat
    assert flavours.get("openai-completions") is OpenAICompletions
    assert OpenAIChat(ENDPOINT, Limits()).url == "http://127.0.0.1:9/v1/chat/completions"


def test_optional_fields_only_when_set() -> None:
    client = OpenAICompletions(ENDPOINT, Limits())
    plain = client.build_request(Probe(id="p", prompt="hi"), "sid")
    assert plain == {
        "prompt": "hi",
        "model": "m",
        "max_tokens": 64,
        "temperature": 0.0,
        "top_p": 1.0,
        "user": "sid",
    }
    full = client.build_request(
        Probe(id="p", prompt="hi", params={"top_k": 5, "seed": 1, "stop": ["\n"]}), "sid"
    )
    assert (full["top_k"], full["seed"], full["stop"]) == (5, 1, ["\n"])


def test_chat_messages_and_completion_transcript() -> None:
    probe = Probe(
        id="p",
        messages=[Message(role="system", content="be brief"), Message(role="user", content="hi")],
    )
    chat = OpenAIChat(ENDPOINT, Limits()).build_request(probe, "sid")
    assert chat["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    completion = OpenAICompletions(ENDPOINT, Limits()).build_request(probe, "sid")
    assert completion["prompt"] == "system: be brief\nuser: hi\nassistant:"


def test_chat_logprobs_without_top() -> None:
    body = OpenAIChat(ENDPOINT, Limits()).build_request(
        Probe(id="p", prompt="hi", params={"logprobs": True}), "sid"
    )
    assert body["logprobs"] is True and "top_logprobs" not in body


def chat_body(**choice: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": "x"}, **choice}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "no 'choices'"),
        ({"choices": []}, "no 'choices'"),
        ({"choices": ["x"]}, "not an object"),
        ({"choices": [{"finish_reason": "stop"}]}, "no 'message'"),
        ({"choices": [{"message": {"content": 3}}]}, "not a string"),
        (chat_body(logprobs={"content": "nope"}), "not a list"),
    ],
)
def test_chat_malformed(body: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        OpenAIChat(ENDPOINT, Limits()).parse_response(body)


def test_chat_null_content_and_usage_details() -> None:
    parsed = OpenAIChat(ENDPOINT, Limits()).parse_response(
        {
            "choices": [{"message": {"content": None}, "finish_reason": "length"}],
            "usage": {"completion_tokens": 3, "details": {"x": 1}, "flag": True},
        }
    )
    assert parsed == ParsedOutput(text="", finish_reason="length", usage={"completion_tokens": 3})


@pytest.mark.parametrize(
    ("logprobs", "message"),
    [
        ({"token_logprobs": [0.0]}, "no 'tokens' list"),
        ({"tokens": ["a", "b"], "token_logprobs": [0.0]}, "differ in length"),
    ],
)
def test_completions_malformed_logprobs(logprobs: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        OpenAICompletions(ENDPOINT, Limits()).parse_response(
            {"choices": [{"text": "ab", "logprobs": logprobs}]}
        )


def test_completions_first_logprob_may_be_null() -> None:
    parsed = OpenAICompletions(ENDPOINT, Limits()).parse_response(
        {
            "choices": [
                {
                    "text": "ab",
                    "logprobs": {
                        "tokens": ["a", "b"],
                        "token_logprobs": [None, -1.5],
                        "top_logprobs": [None, {"b": -1.5, "c": -2}],
                    },
                }
            ]
        }
    )
    assert parsed.tokens == [
        TokenLogprob("a", None),
        TokenLogprob("b", -1.5, {"b": -1.5, "c": -2.0}),
    ]


class Generate(EndpointClient):
    """The docstring's example of a new flavour: a wire format and nothing else."""

    path = "/generate"

    def build_request(self, probe: Probe, session_id: str) -> dict[str, Any]:
        return {"inputs": probe.as_prompt(), "parameters": {"max_new_tokens": 8}}

    def parse_response(self, body: dict[str, Any]) -> ParsedOutput:
        text = body.get("generated_text")
        if not isinstance(text, str):
            raise MalformedResponse("response has no 'generated_text'")
        return ParsedOutput(text=text)


def test_a_new_flavour_is_a_small_subclass() -> None:
    client = Generate(ENDPOINT, Limits())
    assert client.url == "http://127.0.0.1:9/v1/generate"
    assert client.parse_response({"generated_text": "ok"}).text == "ok"
    with pytest.raises(MalformedResponse):
        client.parse_response({"oops": 1})
