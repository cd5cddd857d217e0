"""Token bytes: read from chat logprobs, keyed by `token_key`, kept through the store and cache.

A byte-level BPE token that ends mid-character has no text of its own: servers send ``""`` (and
several such alternatives collide on that key) or its bytes. The bytes are what identify it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.endpoints import OpenAIChat
from canary.probes.model import Probe, Suite
from canary.records import TokenLogprob, ambiguous_token_text
from canary.runner.once import run_once
from canary.store import Store, open_store
from canary.store.reference_cache import (
    CachedOutput,
    get_reference_outputs,
    position_from_json,
    put_reference_outputs,
)
from canary.store.views import tokens_from_json
from tests.support.hostile_server import HostileServer, Reply, serve_hostile

CHAT = OpenAIChat(EndpointConfig(name="e", base_url="http://127.0.0.1:9/v1", model="m"), Limits())
THAI = "ส".encode()  # three bytes: E0 B8 AA


def item(token: str, logprob: float, raw: Any = None, top: list[Any] | None = None) -> Any:
    entry: dict[str, Any] = {"token": token, "logprob": logprob, "top_logprobs": top or []}
    if raw is not None:
        entry["bytes"] = raw
    return entry


def body(*content: Any) -> dict[str, Any]:
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": "x"},
                "finish_reason": "stop",
                "logprobs": {"content": list(content)},
            }
        ]
    }


def test_bytes_are_read_and_partial_tokens_keyed_by_their_bytes() -> None:
    parsed = CHAT.parse_response(
        body(
            item(
                "",
                -0.1,
                list(THAI[:2]),
                [
                    item("", -0.1, list(THAI[:2])),
                    item("", -2.5, [0xE0, 0xB9]),
                    item("ส", -3.0, list(THAI)),
                    item("a", -4.0),  # no bytes: keyed by its text
                ],
            ),
            item("\ufffd", -0.2, [0xAA], [item("\ufffd", -0.2, [0xAA])]),
        )
    )
    assert parsed.tokens == [
        TokenLogprob(
            "",
            -0.1,
            {"<0xE0><0xB8>": -0.1, "<0xE0><0xB9>": -2.5, "ส": -3.0, "a": -4.0},
            bytes=THAI[:2],
        ),
        TokenLogprob("\ufffd", -0.2, {"<0xAA>": -0.2}, bytes=b"\xaa"),
    ]
    assert parsed.dropped_logprobs == 0


@pytest.mark.parametrize(
    "raw",
    ["e0b8", [256], [-1], [1.0], [True], [[1]], {"0": 1}, list(range(100)) * 3, None],
)
def test_hostile_bytes_are_missing_not_malformed(raw: Any) -> None:
    entry = item("a", -0.5, top=[{"token": "a", "logprob": -0.5, "bytes": raw}])
    entry["bytes"] = raw
    parsed = CHAT.parse_response(body(entry))
    assert parsed.tokens == [TokenLogprob("a", -0.5, {"a": -0.5})]


def test_colliding_alternatives_keep_the_best_logprob_under_the_ambiguous_key() -> None:
    alternatives = [item("", -1.0), item("", -0.5), item("", -2.0), item(" x", -3.0)]
    parsed = CHAT.parse_response(body(item("", -0.5, top=alternatives)))
    assert parsed.tokens is not None
    (position,) = parsed.tokens
    assert position.top == {"": -0.5, " x": -3.0}
    assert ambiguous_token_text("") and ambiguous_token_text("a\ufffd")
    assert not ambiguous_token_text(" x")


def test_stored_tokens_without_bytes_still_read_and_bad_bytes_read_as_missing() -> None:
    old = [{"token": "a", "logprob": -1.0, "top": {"a": -1.0}, "token_id": None}]
    assert tokens_from_json(old) == [TokenLogprob("a", -1.0, {"a": -1.0})]
    for stored in ("zz", 5, ["e0"], "ab" * 300):
        (position,) = tokens_from_json([{**old[0], "bytes": stored}]) or []
        assert position.bytes is None, stored
    assert position_from_json({"token": "a", "token_id": 3, "logprob": -1.0}).bytes is None


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with serve_hostile() as server:
        yield server


def test_bytes_round_trip_through_run_and_store(hostile: HostileServer, any_db_url: str) -> None:
    reply = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ส"},
                "finish_reason": "stop",
                "logprobs": {
                    "content": [
                        item(
                            "",
                            -0.1,
                            list(THAI[:2]),
                            [item("", -0.1, list(THAI[:2])), item("", -3.0)],
                        ),
                        item("\ufffd", -0.2, [0xAA], [item("\ufffd", -0.2, [0xAA])]),
                    ]
                },
            }
        ]
    }
    hostile.script("thai", Reply(body=json.dumps(reply).encode()))
    endpoint = EndpointConfig(name="thai", base_url=hostile.base_url("thai"), model="m")
    fleet = FleetConfig(defaults=Limits(max_retries=0), endpoints=[endpoint])
    suite = Suite(
        name="bytes",
        probes=[Probe(id="p", prompt="Thai", params={"logprobs": True, "top_logprobs": 2})],
    )
    store = open_store(any_db_url)
    try:
        run = run_once(fleet, suite, store, fleet.endpoints, handle_signals=False)
        (row,) = store.results_for_run(run.run_id)
        shown = json.loads(json.dumps(store.get_result(row.id).to_dict()))
    finally:
        store.close()
    assert row.ok, row.error_detail
    assert row.tokens == [
        TokenLogprob("", -0.1, {"<0xE0><0xB8>": -0.1, "": -3.0}, bytes=THAI[:2]),
        TokenLogprob("\ufffd", -0.2, {"<0xAA>": -0.2}, bytes=b"\xaa"),
    ]
    assert [t["bytes"] for t in shown["tokens"]] == [list(THAI[:2]), [0xAA]]


def test_reference_cache_keeps_token_bytes(store: Store) -> None:
    tokens = [
        TokenLogprob("", -0.1, {"<0xE0><0xB8>": -0.1}, token_id=7, bytes=THAI[:2]),
        TokenLogprob("a", -0.2, {"a": -0.2}, token_id=8),
    ]
    output = CachedOutput("k", "prompt", {"max_tokens": 2}, "ส", tokens)
    assert put_reference_outputs(store, "fp-1", [output]) == 1
    assert get_reference_outputs(store, "fp-1", ["k"])["k"].tokens == tokens
