"""How a pool writes a token that ends inside a character: switchable, and on the wire as the
servers it imitates write it (`replacement`, `empty`, `bytes`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from canary.config.fleet import EndpointConfig, Limits
from canary.detectors.alignment import own_bytes
from canary.detectors.topk import compare_to_reference
from canary.endpoints import OpenAIChat, OpenAICompletions
from canary.records import TokenLogprob, token_key
from canary.sim.engine import GenResult, TokenInfo
from canary.sim.fleetconfig import TOKEN_ENCODINGS, TokenEncoding
from canary.sim.openai_api import ChatRequest, CompletionRequest, chat_body, completion_body
from canary.sim.server import RunningFleet

#: A Japanese prompt whose greedy continuation spells characters byte by byte.
SPLITTING_PROMPT = "ごど步、びけ"
ENDPOINT = EndpointConfig(name="e", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def lab(fleet: RunningFleet) -> Iterator[str]:
    """The lab pool's fault URL; its encoding is restored afterwards."""
    url = f"{fleet.base_url}/admin/pools/lab/faults"
    yield url
    assert httpx.put(url, json={"token_encoding": "replacement"}).status_code == 200


def complete(fleet: RunningFleet, prompt: str) -> dict[str, Any]:
    body = {"prompt": prompt, "max_tokens": 6, "temperature": 0, "logprobs": 3}
    response = httpx.post(f"{fleet.pool_url('lab')}/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json()["choices"][0])


def test_token_encoding_switches_at_run_time(fleet: RunningFleet, lab: str, trained: bool) -> None:
    if not trained:
        pytest.skip("an untrained model's greedy output need not split characters")
    replaced = complete(fleet, SPLITTING_PROMPT)
    assert any("\ufffd" in t for t in replaced["logprobs"]["tokens"])
    answer = httpx.put(lab, json={"token_encoding": "empty"})
    assert answer.status_code == 200 and answer.json()["pool"]["token_encoding"] == "empty"
    empty = complete(fleet, SPLITTING_PROMPT)
    assert empty["text"] == replaced["text"]
    assert "" in empty["logprobs"]["tokens"]
    assert any("" in top for top in empty["logprobs"]["top_logprobs"])
    assert httpx.put(lab, json={"token_encoding": "bytes"}).status_code == 200
    spelled = complete(fleet, SPLITTING_PROMPT)
    assert any(t.startswith("bytes:\\x") for t in spelled["logprobs"]["tokens"])
    parsed = OpenAICompletions(ENDPOINT, Limits()).parse_response({"choices": [spelled]})
    assert parsed.tokens is not None
    # Spelled in full, the partial tokens give back the text byte for byte.
    raw = b"".join(own_bytes(t) or b"?" for t in parsed.tokens)
    assert raw.decode("utf-8") == spelled["text"]
    state = httpx.get(f"{fleet.base_url}/admin/state").json()["pools"]["lab"]
    assert state["token_encoding"] == "bytes"


def test_an_unknown_token_encoding_is_refused(fleet: RunningFleet, lab: str) -> None:
    answer = httpx.put(lab, json={"token_encoding": "utf-16"})
    assert answer.status_code == 400
    assert "token_encoding: 'utf-16' is not one of" in answer.json()["error"]["message"]


# "马" in three single-byte tokens, each with a partial and a whole alternative.
MA = [
    (b"\xe9", -1.2, [(b"\xe5", -1.3), ("。".encode(), -2.0)]),
    (b"\xa9", -0.4, [(b"\xab", -0.5), (b"\xa1", -0.9)]),
    (b"\xac", -0.2, [(b"\xba", -2.2), ("。".encode(), -2.9)]),
]


def _info(raw: bytes, lp: float, alts: list[tuple[bytes, float]]) -> TokenInfo:
    top = [(raw, lp), *alts]
    return TokenInfo(
        0,
        raw.decode("utf-8", "replace"),
        lp,
        [(r.decode("utf-8", "replace"), v) for r, v in top],
        raw=raw,
        top_raw=[r for r, _ in top],
    )


RESULT = GenResult("马", [_info(*m) for m in MA], "length", 3, [1, 1, 1])
REFERENCE = [
    TokenLogprob(
        raw.decode("utf-8", "replace"),
        lp,
        {token_key("", r): v for r, v in [(raw, lp), *alts]},
        bytes=raw,
    )
    for raw, lp, alts in MA
]


@pytest.mark.parametrize("encoding", TOKEN_ENCODINGS)
def test_chat_partial_tokens_parse_to_the_same_bytes_as_the_reference(
    encoding: TokenEncoding,
) -> None:
    request = ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": "x"}], "logprobs": True, "top_logprobs": 3}
    )
    body = chat_body(request, RESULT, "m", encoding)
    content = body["choices"][0]["logprobs"]["content"]
    if encoding == "bytes":
        assert [c["bytes"] for c in content] == [[0xE9], [0xA9], [0xAC]]
        assert content[0]["top_logprobs"][1] == {"token": "\\xe5", "logprob": -1.3, "bytes": [0xE5]}
    elif encoding == "empty":
        assert [c["token"] for c in content] == ["", "", ""]
    parsed = OpenAIChat(ENDPOINT, Limits()).parse_response(body)
    assert parsed.tokens is not None
    result = compare_to_reference(parsed.tokens, REFERENCE, parsed.text, "马")
    assert result.first_divergence is None and result.top1_agreement == 1.0
    assert result.not_argmax == 0.0 and not any(s.flagged for s in result.to_scores())


@pytest.mark.parametrize("encoding", TOKEN_ENCODINGS)
def test_completion_partial_tokens_agree_with_the_reference(encoding: TokenEncoding) -> None:
    request = CompletionRequest.model_validate({"prompt": "x", "logprobs": 3})
    body = completion_body(request, RESULT, "m", encoding)
    if encoding == "empty":  # vLLM's map: colliding "" keys, the last (least likely) wins
        assert body["choices"][0]["logprobs"]["top_logprobs"][1] == {"": -0.9}
    parsed = OpenAICompletions(ENDPOINT, Limits()).parse_response(body)
    assert parsed.tokens is not None
    result = compare_to_reference(parsed.tokens, REFERENCE, parsed.text, "马")
    assert result.first_divergence is None and result.top1_agreement == 1.0
    assert not any(s.flagged for s in result.to_scores())
