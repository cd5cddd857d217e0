"""Tool calls in the simulated fleet: guided decoding of a call, and the tool parser.

With `tool_choice` `required` or a named function, the server builds the call the way guided
decoding does in vLLM or SGLang: the model writes the arguments token by token, and at every
step a mask (`Guide`, the engine's `logits_processor`) allows only the tokens that keep the text
a valid prefix of a JSON object matching the tool's `parameters`, and end-of-sequence only once
the object is complete. The text is compact JSON (no whitespace outside strings) and every
value is bounded (strings by `maxLength`, else `DEFAULT_MAX_STRING` characters; numbers by
`MAX_NUMBER_CHARS`), so a guided call always ends within `max_chars` tokens: a healthy pool
never returns invalid arguments. With `required` and several tools, the function name is
chosen first, the same way, among the tool names.

With `auto` (the default when tools are given) the model answers freely and the parser takes a
Hermes-style ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` block out of its text;
the shipped tiny model practically never writes one, so `auto` answers in text. `none` never
calls. The prompt lists the tools (`tools_line`) the way chat templates put them in front.

Schemas: the supported subset is an object (`type: object`) with `properties` of type
`string` (`minLength`/`maxLength`), `integer`, `number`, `boolean`, or an `enum`/`const` of
JSON scalars, and a `required` list; `description`, `title`, `default`, `examples` and
`additionalProperties: false` are accepted and change nothing. Anything else is refused with
400 (`SchemaUnsupported`), so the simulator never pretends to honour a schema it does not.
Property names and enum strings must be printable ASCII without quotes or backslashes.

The `tool_call_format` fault (`canary.sim.fleetconfig.ToolCallFormat`) is a bug in the parser
stage, after decoding: with probability `p` a call's `arguments` lose their closing brace
(`truncate`) or are JSON-encoded a second time (`double_encode`).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from canary.sim.fleetconfig import ToolCallFormat
from canary.sim.tool_calls.grammar import (
    DEFAULT_MAX_STRING,
    MAX_NUMBER_CHARS,
    ChoiceGrammar,
    Grammar,
    Guide,
    ObjectGrammar,
    ObjectSchema,
    SchemaUnsupported,
    TokenTable,
    compile_schema,
    token_table,
    walk,
)

if TYPE_CHECKING:
    from canary.sim.engine import GenRequest, GenResult
    from canary.sim.fleet import SimFleet

__all__ = [
    "DEFAULT_MAX_STRING",
    "MAX_NUMBER_CHARS",
    "CallTooLong",
    "ChoiceGrammar",
    "Grammar",
    "Guide",
    "ObjectGrammar",
    "ObjectSchema",
    "SchemaUnsupported",
    "TokenTable",
    "ToolReply",
    "ToolRequest",
    "compile_schema",
    "formatted_arguments",
    "parse_text_call",
    "token_table",
    "tool_reply",
    "tools_line",
    "walk",
]

_HERMES = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


# -- the parser ----------------------------------------------------------------------------------


def tools_line(tools: Sequence[tuple[str, str | None, dict[str, Any]]]) -> str:
    """The line the prompt gets for the tools offered, as a chat template would add them."""
    listed = [{"name": n, "description": d or "", "parameters": p} for n, d, p in tools]
    return "tools: " + json.dumps(listed, separators=(",", ":")) + "\n"


def call_prefix(name: str | None = None) -> str:
    """What the assistant turn starts with when a call is forced: the Hermes opening, then
    the function name once it is chosen."""
    prefix = ' <tool_call>{"name":'
    return prefix if name is None else prefix + json.dumps(name) + ',"arguments":'


def parse_text_call(text: str, names: Iterable[str]) -> tuple[str, str] | None:
    """(name, arguments JSON) of a `<tool_call>` block the model wrote, or None."""
    match = _HERMES.search(text)
    if match is None:
        return None
    try:
        call = json.loads(match.group(1))
    except ValueError:
        return None
    if not isinstance(call, dict) or call.get("name") not in set(names):
        return None
    arguments = call.get("arguments", {})
    return str(call["name"]), json.dumps(arguments, separators=(",", ":"))


def tool_call(name: str, arguments: str) -> dict[str, Any]:
    """One entry of `message.tool_calls`, with a fresh id."""
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


_FAULT_STREAMS: dict[int, tuple[ToolCallFormat, random.Random]] = {}


def formatted_arguments(arguments: str, fault: ToolCallFormat | None) -> str:
    """The arguments as the (possibly buggy) parser hands them on."""
    if fault is None:
        return arguments
    entry = _FAULT_STREAMS.get(id(fault))
    if entry is None or entry[0] is not fault:
        if len(_FAULT_STREAMS) > 64:
            _FAULT_STREAMS.clear()
        entry = _FAULT_STREAMS[id(fault)] = (fault, random.Random(fault.seed))
    if entry[1].random() >= fault.p:
        return arguments
    if fault.variant == "truncate":
        return arguments[:-1] if arguments.endswith("}") else arguments
    return json.dumps(arguments)


# -- serving -----------------------------------------------------------------------------------


class CallTooLong(ValueError):
    """The prompt with the tools plus the longest call the schema allows exceed the context."""


class ToolRequest(Protocol):
    """What serving a call needs of a chat request (`canary.sim.openai_api.ChatRequest`)."""

    def tool_mode(self) -> str: ...

    def prompt_text(self) -> str: ...

    def offered(self) -> dict[str, dict[str, Any]]:
        """Each tool's `parameters`, by function name."""
        ...


@dataclass
class ToolReply:
    """What the model produced for a request with tools: the generation the reply shows, and
    its tool calls (None: it answers in text)."""

    result: GenResult
    calls: list[dict[str, Any]] | None


async def tool_reply(fleet: SimFleet, pool: str, req: ToolRequest, gen: GenRequest) -> ToolReply:
    """Generate for a chat request that offers tools: a guided call when one is forced (see
    the module docstring), else the model's text with any `<tool_call>` block it wrote. With
    a name chosen first, the reply's usage counts the arguments' tokens only."""
    fault = fleet.engines[pool].state.faults.tool_call_format
    tools = req.offered()
    mode = req.tool_mode()
    if mode in ("auto", "none"):
        result = await fleet.generate(pool, gen)
        found = parse_text_call(result.text, tools) if mode == "auto" else None
        if found is None:
            return ToolReply(result, None)
        return ToolReply(result, [tool_call(found[0], formatted_arguments(found[1], fault))])
    table = token_table(fleet.store)
    if mode == "required" and len(tools) > 1:
        choice = ChoiceGrammar([json.dumps(n) for n in tools])
        base = req.prompt_text() + call_prefix()
        picked = await _guided(fleet, pool, base, choice, choice.max_chars, gen, table)
        text = _text(picked, table)
        mode = json.loads(text) if text in choice.choices else next(iter(tools))
    elif mode == "required":
        mode = next(iter(tools))
    grammar = ObjectGrammar(compile_schema(tools[mode]))
    prompt = req.prompt_text() + call_prefix(mode)
    result = await _guided(fleet, pool, prompt, grammar, grammar.schema.max_chars, gen, table)
    arguments = formatted_arguments(_text(result, table), fault)
    return ToolReply(result, [tool_call(mode, arguments)])


async def _guided(
    fleet: SimFleet,
    pool: str,
    prompt: str,
    grammar: Grammar,
    max_chars: int,
    gen: GenRequest,
    table: TokenTable,
) -> GenResult:
    from canary.sim.engine import GenRequest

    prompt_ids = fleet.encode(prompt)
    wanted = max_chars + 1  # every token is at least one character, then end-of-sequence
    if len(prompt_ids) + wanted > fleet.engines[pool].max_context:
        raise CallTooLong(
            f"prompt ({len(prompt_ids)} tokens with the tools) plus the longest call the schema "
            f"allows ({wanted}) exceeds this model's context; offer fewer or smaller tools"
        )
    request = GenRequest(
        prompt_ids=prompt_ids,
        max_tokens=wanted,
        temperature=gen.temperature,
        top_p=gen.top_p,
        top_k=gen.top_k,
        seed=gen.seed,
        logprobs=gen.logprobs,
        logits_processor=Guide(grammar, table),
    )
    return await fleet.generate(pool, request)


def _text(result: GenResult, table: TokenTable) -> str:
    """The generated text as the guide saw it: the tokens' texts joined."""
    return "".join(table.strings[t.token_id] for t in result.tokens)
