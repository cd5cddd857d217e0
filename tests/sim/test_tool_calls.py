"""Tool calls in the simulated fleet: guided decoding keeps arguments schema-valid, and the
`tool_call_format` fault breaks them at its rate, over real HTTP and on the real vocabulary."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from scipy.stats import binom

from canary.sim.server import RunningFleet
from canary.sim.tool_calls import (
    ChoiceGrammar,
    Guide,
    ObjectGrammar,
    TokenTable,
    compile_schema,
    parse_text_call,
    walk,
)

S = {"type": "string"}
SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"city": S, "unit": {"enum": ["celsius", "fahrenheit"]}},
     "required": ["city", "unit"]},
    {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
     "required": ["a", "b"]},
    {"type": "object", "properties": {"n": {"type": "integer"}, "flag": {"type": "boolean"},
     "tag": {"type": "string", "minLength": 2, "maxLength": 4}}, "required": ["n"]},
    {"type": "object", "properties": {"code": {"type": "string", "minLength": 3, "maxLength": 3},
     "level": {"enum": [1, 2, 3]}, "mode": {"const": "fast"}}, "required": ["code", "mode"]},
    {"type": "object", "properties": {}},
    {"type": "object", "properties": {"q": {"type": "string", "maxLength": 0},
     "x": {"type": "number"}}, "required": []},
]  # fmt: skip
PROMPTS = [
    "What is the weather in Paris?",
    "Add 2 and 3.",
    "def f(x):",
    "Book a table for two at eight.",
    "",
    "Ünïcode prompt: 東京の天気",
]


def _tool(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": schema}}


@pytest.fixture(scope="module")
def table(model_path: Path) -> TokenTable:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    strings = [str(tokenizer.decode([i])) for i in range(len(tokenizer))]
    return TokenTable(strings, tokenizer.all_special_ids, tokenizer.eos_token_id)


def _decode_with_random_logits(grammar: Any, table: TokenTable, seed: int) -> str:
    """Sample under the guide from random logits until end-of-sequence: the text the mask
    lets through whatever the model prefers."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    guide = Guide(grammar, table)
    ids: list[int] = []
    for _ in range(400):
        row = torch.randn(len(table.strings), generator=generator) * 4
        guide(ids, row)
        token = int(torch.multinomial(torch.softmax(row, -1), 1, generator=generator))
        if token == table.eos:
            break
        ids.append(token)
    return "".join(table.strings[i] for i in ids)


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
def test_any_logits_under_the_guide_give_schema_valid_arguments(
    table: TokenTable, index: int
) -> None:
    schema = SCHEMAS[index]
    grammar = ObjectGrammar(compile_schema(schema))
    validator = Draft202012Validator(schema)
    for seed in range(8):
        text = _decode_with_random_logits(grammar, table, seed)
        assert len(text) <= grammar.schema.max_chars
        validator.validate(json.loads(text))


def test_choice_guide_yields_one_of_the_names(table: TokenTable) -> None:
    names = [json.dumps(n) for n in ("get", "get_weather", "add")]
    for seed in range(6):
        assert _decode_with_random_logits(ChoiceGrammar(names), table, seed) in names


@settings(max_examples=60, deadline=None)
@given(
    city=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=24),
    unit=st.sampled_from(["celsius", "fahrenheit"]),
)
def test_every_valid_compact_instance_is_accepted(city: str, unit: str) -> None:
    grammar = ObjectGrammar(compile_schema(SCHEMAS[0]))
    text = json.dumps({"unit": unit, "city": city}, separators=(",", ":"), ensure_ascii=False)
    state = walk(grammar, grammar.start, text)
    ok = '"' not in city and "\\" not in city
    assert (state is not None and grammar.can_end(state)) == ok


@pytest.mark.parametrize(
    "text",
    ['{"city":"x"}', '{"unit":"kelvin","city":"x"}', '{"city":"x","city":"y","unit":"celsius"}',
     '{ "city":"x"', '{"city":"x","unit":"celsius",}', '{"city":"x","unit":"celsius","z":1}'],
)  # fmt: skip
def test_invalid_texts_are_refused(text: str) -> None:
    grammar = ObjectGrammar(compile_schema(SCHEMAS[0]))
    state = walk(grammar, grammar.start, text)
    assert state is None or not grammar.can_end(state)


async def _call(
    client: httpx.AsyncClient, url: str, prompt: str, tools: list[dict[str, Any]], choice: Any
) -> httpx.Response:
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "tools": tools,
        "tool_choice": choice,
        "temperature": 0.8,
        "seed": random.getrandbits(31),
    }
    return await client.post(f"{url}/chat/completions", json=body, timeout=120)


async def _calls(fleet: RunningFleet, pool: str, n: int) -> list[tuple[dict[str, Any], Any]]:
    """`n` forced calls over the schemas and prompts; (schema, reply message) each."""
    jobs = []
    async with httpx.AsyncClient() as client:
        for i in range(n):
            schema = SCHEMAS[i % len(SCHEMAS)]
            tools = [_tool("target", schema), _tool("other", SCHEMAS[1])]
            choice: Any = (
                {"type": "function", "function": {"name": "target"}} if i % 2 else "required"
            )
            tools = tools if i % 2 else tools[:1]
            jobs.append(
                _call(client, fleet.pool_url(pool), PROMPTS[i % len(PROMPTS)], tools, choice)
            )
        replies = await asyncio.gather(*jobs)
    out = []
    for i, reply in enumerate(replies):
        assert reply.status_code == 200, reply.text
        choice = reply.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        out.append((SCHEMAS[i % len(SCHEMAS)], choice["message"]))
    return out


async def test_forced_calls_over_http_are_schema_valid(fleet: RunningFleet) -> None:
    ids = set()
    for schema, message in await _calls(fleet, "gpu-fp32", 12):
        assert message["content"] is None
        (call,) = message["tool_calls"]
        assert call["type"] == "function" and call["function"]["name"] == "target"
        assert call["id"].startswith("call_") and call["id"] not in ids
        ids.add(call["id"])
        Draft202012Validator(schema).validate(json.loads(call["function"]["arguments"]))


def _faults(fleet: RunningFleet, pool: str, body: dict[str, Any]) -> None:
    httpx.put(f"{fleet.base_url}/admin/pools/{pool}/faults", json=body).raise_for_status()


async def test_format_fault_breaks_arguments_at_its_rate(fleet: RunningFleet) -> None:
    n, p = 24, 0.5
    _faults(fleet, "lab", {"tool_call_format": {"p": p, "variant": "double_encode", "seed": 3}})
    try:
        broken = 0
        for _, message in await _calls(fleet, "lab", n):
            parsed = json.loads(message["tool_calls"][0]["function"]["arguments"])
            broken += isinstance(parsed, str)  # encoded twice: a JSON string, not an object
        low, high = binom.ppf(0.0005, n, p), binom.ppf(0.9995, n, p)
        assert low <= broken <= high, broken
        _faults(fleet, "lab", {"tool_call_format": {"p": 1.0, "variant": "truncate"}})
        for _, message in await _calls(fleet, "lab", 6):
            arguments = message["tool_calls"][0]["function"]["arguments"]
            with pytest.raises(json.JSONDecodeError):
                json.loads(arguments)
            json.loads(arguments + "}")  # exactly the closing brace is missing
    finally:
        _faults(fleet, "lab", {"tool_call_format": None})
    for schema, message in await _calls(fleet, "lab", 4):
        Draft202012Validator(schema).validate(
            json.loads(message["tool_calls"][0]["function"]["arguments"])
        )


def test_unsupported_tools_are_refused_with_400(fleet: RunningFleet) -> None:
    url = f"{fleet.pool_url('gpu-fp32')}/chat/completions"
    messages = [{"role": "user", "content": "hi"}]
    array = _tool("f", {"type": "object", "properties": {"xs": {"type": "array"}}})
    for body in (
        {"messages": messages, "tools": [array], "tool_choice": "required"},
        {"messages": messages, "tools": [_tool("f", SCHEMAS[1])],
         "tool_choice": {"type": "function", "function": {"name": "g"}}},
        {"messages": messages, "tool_choice": "required"},
    ):  # fmt: skip
        reply = httpx.post(url, json=body, timeout=60)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["message"]


def test_none_answers_in_text(fleet: RunningFleet) -> None:
    url = f"{fleet.pool_url('gpu-fp32')}/chat/completions"
    body = {
        "messages": [{"role": "user", "content": "Tell me about clouds."}],
        "tools": [_tool("f", SCHEMAS[1])],
        "tool_choice": "none",
        "temperature": 0,
    }
    message = httpx.post(url, json=body, timeout=60).json()["choices"][0]["message"]
    assert isinstance(message["content"], str) and "tool_calls" not in message


def test_auto_parses_a_written_tool_call_block() -> None:
    text = 'Sure. <tool_call> {"name": "add", "arguments": {"a": 1, "b": 2}} </tool_call>'
    assert parse_text_call(text, ["add"]) == ("add", '{"a":1,"b":2}')
    assert parse_text_call(text, ["sub"]) is None
    assert parse_text_call("<tool_call>{not json}</tool_call>", ["add"]) is None
    assert parse_text_call("no call here", ["add"]) is None
