"""Tool calls in a reply are hostile input: every shape becomes data, never an exception.

The chat flavour reads `message.tool_calls` into `ToolCall` values whose `problem` names what
was wrong; the store keeps them inside the `response` JSON and reads them back as they were.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.config.fleet import EndpointConfig, Limits
from canary.endpoints import OpenAIChat, OpenAICompletions
from canary.endpoints.openai import tool_calls
from canary.probes.model import Probe
from canary.records import MAX_TOOL_ARGUMENTS, MAX_TOOL_CALLS, ToolCall
from canary.store.rows import result_row
from canary.store.views import tool_calls_from_json
from tests.support.openai_server import FakeOpenAI

ENDPOINT = EndpointConfig(name="e1", base_url="http://127.0.0.1:9/v1", model="m")
TOOL = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PROBE = Probe.model_validate(
    {
        "id": "p",
        "kind": "tool_call",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [TOOL],
        "tool_choice": "get_weather",
    }
)


def reply(calls: Any, finish: Any = "tool_calls") -> dict[str, Any]:
    return {
        "choices": [{"message": {"content": None, "tool_calls": calls}, "finish_reason": finish}]
    }


GOOD = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([GOOD], ToolCall("call_1", "f", "{}", "function", None)),
        ("oops", ToolCall(None, None, None, None, "tool_calls is JSON string, not an array")),
        ({"id": "x"}, ToolCall(None, None, None, None, "tool_calls is JSON object, not an array")),
        ([7], ToolCall(None, None, None, None, "tool_calls[0] is JSON number, not an object")),
        (
            [{**GOOD, "id": 12}],
            ToolCall(None, "f", "{}", "function", "tool_calls[0].id is JSON number, not a string"),
        ),
        (
            [{**GOOD, "function": {"name": "f", "arguments": {"city": "x"}}}],
            ToolCall(
                "call_1",
                "f",
                '{"city": "x"}',
                "function",
                "tool_calls[0].function.arguments is JSON object, not a string",
            ),
        ),
        (
            [{**GOOD, "function": {"name": ["f"], "arguments": 3}}],
            ToolCall(
                "call_1",
                None,
                None,
                "function",
                "tool_calls[0].function.name is JSON array, not a string; "
                "tool_calls[0].function.arguments is JSON number, not a string",
            ),
        ),
        (
            [{"id": "c", "function": None}],
            ToolCall("c", None, None, None, "tool_calls[0].function is JSON null, not an object"),
        ),
    ],
)
def test_hostile_shapes_become_tool_calls(calls: Any, expected: ToolCall) -> None:
    parsed = OpenAIChat(ENDPOINT, Limits()).parse_response(reply(calls))
    assert parsed.tool_calls == (expected,)
    assert parsed.text == ""


def test_no_tool_calls_key_is_none_and_long_replies_are_bounded() -> None:
    assert OpenAIChat(ENDPOINT, Limits()).parse_response(reply(None)).tool_calls is None
    many = tool_calls([GOOD] * (MAX_TOOL_CALLS + 5))
    assert many is not None and len(many) == MAX_TOOL_CALLS
    huge = {**GOOD, "function": {"name": "f", "arguments": "x" * (MAX_TOOL_ARGUMENTS + 10)}}
    (call,) = tool_calls([huge]) or ()
    assert len(call.arguments or "") == MAX_TOOL_ARGUMENTS and "longer than" in (call.problem or "")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)
_CALL = st.fixed_dictionaries(
    {},
    optional={
        "id": _JSON,
        "type": _JSON,
        "function": st.fixed_dictionaries({}, optional={"name": _JSON, "arguments": _JSON}) | _JSON,
    },
)


@settings(max_examples=120, deadline=None)
@given(calls=st.lists(_CALL | _JSON, max_size=5) | _JSON)
def test_any_json_is_read_as_data(calls: Any) -> None:
    parsed = OpenAIChat(ENDPOINT, Limits()).parse_response(reply(calls))
    for call in parsed.tool_calls or ():
        assert all(v is None or isinstance(v, str) for v in (call.id, call.name, call.arguments))


def test_calls_survive_the_store_as_they_were() -> None:
    from datetime import UTC, datetime

    from canary.records import ResultRecord

    hostile = (
        ToolCall("call_\x00x", "f\u202e", '{"a": "\ud800"}', "function", None),
        ToolCall(None, None, None, None, "tool_calls[1] is JSON number, not an object"),
    )
    record = ResultRecord(
        endpoint="e1",
        probe_id="p",
        repeat_index=0,
        session_id="s",
        labels={},
        request={},
        started_at=datetime.now(UTC),
        latency_ms=1.0,
        attempts=1,
        output_text="",
        tool_calls=hostile,
    )
    stored = json.loads(json.dumps(result_row(record, 1, 1, 1, 1)["response"]))
    back = tool_calls_from_json(stored["tool_calls"])
    assert back is not None and len(back) == 2
    assert back[1] == hostile[1]
    assert "\x00" not in (back[0].id or "") and "\ud800" not in (back[0].arguments or "")
    assert tool_calls_from_json(None) is None
    assert tool_calls_from_json([3, {"id": 5}]) == (
        ToolCall(None, None, None, None, "stored tool call is not an object"),
        ToolCall(None, None, None, None, None),
    )
    without = result_row(
        ResultRecord("e1", "p", 0, "s", {}, {}, datetime.now(UTC), 1.0, 1), 1, 1, 1, 1
    )
    assert "tool_calls" not in without["response"]  # rows without tools stay as they were


async def test_offered_tools_without_calls_record_an_empty_tuple(server: FakeOpenAI) -> None:
    endpoint = EndpointConfig(name="e2", base_url=server.base_url, model="m")
    async with OpenAIChat(endpoint, Limits(max_retries=0)) as client:
        record = await client.send(PROBE, session_id="s", labels={})
    assert record.ok and record.tool_calls == ()
    assert record.request["tools"][0]["function"]["name"] == "get_weather"
    assert record.request["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


async def test_completions_cannot_offer_tools(server: FakeOpenAI) -> None:
    endpoint = EndpointConfig(
        name="e3", base_url=server.base_url, model="m", flavour="openai-completions"
    )
    async with OpenAICompletions(endpoint, Limits(max_retries=0)) as client:
        record = await client.send(PROBE, session_id="s", labels={})
    assert record.ok and record.tool_calls is None and "tools" not in record.request
