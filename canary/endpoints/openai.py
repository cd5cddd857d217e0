"""OpenAI-compatible wire formats: legacy `/completions` and `/chat/completions`.

Each flavour is only the wire format; transport, retries and limits live in `EndpointClient`.

Every reply is hostile input, and the rule for a wrong type is one rule: a field the format
defines as text (the output, a token, `finish_reason`) that holds anything else makes the reply
`malformed`; a logprob that is not a finite number (NaN, ±Infinity, a string) is *missing*: the
chosen token's becomes None and such alternatives are dropped from `top`, counted in
`ParsedOutput.dropped_logprobs`. Nothing non-finite ever reaches the store or a detector.

Token bytes follow the same rule as logprobs: chat's `logprobs.content[].bytes` (and each
alternative's) must be a list of integers 0-255; anything else (a string, a float, 256, a
boolean, a list longer than `MAX_TOKEN_BYTES`) is *missing*, never a malformed reply, since
the token's text is still there. Alternatives are keyed by `canary.records.token_key`, so a
partial-character token with bytes gets a byte-notation key; several alternatives that share
one key (``""`` without bytes, as some servers send) keep the best logprob under it, and
detectors treat such ambiguous keys as unknown. Serving metadata (`system_fingerprint`) that
is not a string is absent: it labels the result, it is not part of the output.

Tools: the chat flavour sends a probe's `tools` and `tool_choice` in OpenAI's shape and reads
`message.tool_calls` as data, never as a reason to fail: a list that is not a list, an entry
that is not an object, an id, name or arguments of the wrong type each become a `ToolCall`
whose `problem` says so (arguments sent as an object are kept as its JSON text, with a
problem), and the `tool_calls` detector judges them. The completions flavour has no way to
offer tools, so it sends a tool probe as plain text and its result carries no tool calls;
the detector leaves such results unscored (not applicable) rather than count a miss.

A new flavour is a small addition in any module (register it under the `canary.endpoints` entry
point group to ship it as a plugin)::

    @flavours.register("tgi-generate")
    class TgiGenerate(EndpointClient):
        path = "/generate"

        def build_request(self, probe: Probe, session_id: str) -> dict[str, Any]:
            p = probe.params
            return {"inputs": probe.as_prompt(),
                    "parameters": {"max_new_tokens": p.max_tokens, "temperature": p.temperature}}

        def parse_response(self, body: dict[str, Any]) -> ParsedOutput:
            text = body.get("generated_text")
            if not isinstance(text, str):
                raise MalformedResponse("response has no 'generated_text'")
            return ParsedOutput(text=text)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from typing import Any

from canary.endpoints.base import EndpointClient, MalformedResponse, ParsedOutput, flavours
from canary.probes.model import Probe
from canary.records import (
    MAX_TOOL_ARGUMENTS,
    MAX_TOOL_CALLS,
    TokenLogprob,
    ToolCall,
    finite_logprob,
    token_key,
)

__all__ = ["MAX_TOKEN_BYTES", "OpenAIChat", "OpenAICompletions", "token_bytes", "tool_calls"]

#: Longest `bytes` list read for one token; longer ones are treated as absent.
MAX_TOKEN_BYTES = 256


def _common_fields(client: EndpointClient, probe: Probe, session_id: str) -> dict[str, Any]:
    """Fields both OpenAI formats share; optional ones only when set (not every server has them)."""
    p = probe.params
    body: dict[str, Any] = {
        "model": client.endpoint.model,
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "user": session_id,
    }
    if p.seed is not None:
        body["seed"] = p.seed
    if p.stop:
        body["stop"] = list(p.stop)
    if p.top_k is not None:
        body["top_k"] = p.top_k  # vLLM/SGLang extension
    return body


def _first_choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse("response has no 'choices'")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise MalformedResponse("choices[0] is not an object")
    return choice


def _finish_reason(choice: dict[str, Any]) -> str | None:
    value = choice.get("finish_reason")
    if value is None or isinstance(value, str):
        return value
    raise MalformedResponse(f"choices[0].finish_reason is JSON {_json_type(value)}, not a string")


def _usage(body: dict[str, Any]) -> dict[str, int] | None:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    return {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else type(value).__name__


class _Logprobs:
    """Reads logprob values, counting those that were sent but are not finite numbers."""

    def __init__(self) -> None:
        self.dropped = 0

    def value(self, raw: Any) -> float | None:
        """A finite float, or None (missing): NaN, ±Infinity and non-numbers are never kept."""
        value = finite_logprob(raw)
        if value is None and raw is not None:
            self.dropped += 1
        return value

    def top(self, pairs: Iterable[tuple[str, Any]]) -> dict[str, float]:
        """The alternatives whose logprob is a finite number; the others are dropped. Keys
        sent more than once (several partial tokens as ``""``) keep the best logprob."""
        kept: dict[str, float] = {}
        for token, raw in pairs:
            value = self.value(raw)
            if value is not None and value > kept.get(token, -math.inf):
                kept[token] = value
        return kept


def token_bytes(raw: Any) -> bytes | None:
    """A token's `bytes` field as bytes, or None (missing) unless it is a list of ints 0-255."""
    if not isinstance(raw, list) or len(raw) > MAX_TOKEN_BYTES:
        return None
    if not all(type(b) is int and 0 <= b <= 255 for b in raw):
        return None
    return bytes(raw)


def _tool_body(probe: Probe) -> dict[str, Any]:
    """`tools` and `tool_choice` in OpenAI's shape, for a probe that offers tools."""
    if not probe.tools:
        return {}
    body: dict[str, Any] = {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in probe.tools
        ]
    }
    choice = probe.tool_choice
    if choice in ("auto", "required", "none"):
        body["tool_choice"] = choice
    elif choice is not None:
        body["tool_choice"] = {"type": "function", "function": {"name": choice}}
    return body


def tool_calls(raw: Any) -> tuple[ToolCall, ...] | None:
    """`message.tool_calls` as values: None when absent, else one `ToolCall` per entry (at
    most `MAX_TOOL_CALLS`), each wrong shape recorded in its `problem`, never raised."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        return (
            ToolCall(None, None, None, None, f"tool_calls is JSON {_json_type(raw)}, not an array"),
        )
    return tuple(_tool_call(item, i) for i, item in enumerate(raw[:MAX_TOOL_CALLS]))


def _tool_call(item: Any, i: int) -> ToolCall:
    where = f"tool_calls[{i}]"
    if not isinstance(item, dict):
        return ToolCall(
            None, None, None, None, f"{where} is JSON {_json_type(item)}, not an object"
        )
    problems = []
    call_id, kind = item.get("id"), item.get("type")
    if call_id is not None and not isinstance(call_id, str):
        problems.append(f"{where}.id is JSON {_json_type(call_id)}, not a string")
        call_id = None
    if kind is not None and not isinstance(kind, str):
        problems.append(f"{where}.type is JSON {_json_type(kind)}, not a string")
        kind = None
    function = item.get("function")
    name: Any = None
    arguments: Any = None
    if isinstance(function, dict):
        name, arguments = function.get("name"), function.get("arguments")
    else:
        problems.append(f"{where}.function is JSON {_json_type(function)}, not an object")
    if name is not None and not isinstance(name, str):
        problems.append(f"{where}.function.name is JSON {_json_type(name)}, not a string")
        name = None
    if isinstance(arguments, dict | list):
        problems.append(f"{where}.function.arguments is JSON {_json_type(arguments)}, not a string")
        try:
            arguments = json.dumps(arguments)
        except (ValueError, RecursionError):
            arguments = None
    elif arguments is not None and not isinstance(arguments, str):
        problems.append(f"{where}.function.arguments is JSON {_json_type(arguments)}, not a string")
        arguments = None
    if isinstance(arguments, str) and len(arguments) > MAX_TOOL_ARGUMENTS:
        problems.append(
            f"{where}.function.arguments is longer than {MAX_TOOL_ARGUMENTS} characters"
        )
        arguments = arguments[:MAX_TOOL_ARGUMENTS]
    return ToolCall(call_id, name, arguments, kind, "; ".join(problems) or None)


def _token_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise MalformedResponse(f"{where} is JSON {_json_type(value)}, not a string")


def _parsed(
    text: str,
    choice: dict[str, Any],
    body: dict[str, Any],
    tokens: tuple[list[TokenLogprob] | None, int],
) -> ParsedOutput:
    parsed_tokens, dropped = tokens
    fingerprint = body.get("system_fingerprint")
    return ParsedOutput(
        text=text,
        finish_reason=_finish_reason(choice),
        tokens=parsed_tokens,
        usage=_usage(body),
        dropped_logprobs=dropped,
        system_fingerprint=fingerprint if isinstance(fingerprint, str) and fingerprint else None,
    )


@flavours.register("openai-completions")
class OpenAICompletions(EndpointClient):
    """POST {base_url}/completions with `prompt`; legacy logprobs (tokens + parallel lists)."""

    path = "/completions"

    def build_request(self, probe: Probe, session_id: str) -> dict[str, Any]:
        body = {"prompt": probe.as_prompt(), **_common_fields(self, probe, session_id)}
        if probe.params.logprobs:
            body["logprobs"] = probe.params.top_logprobs or 0
        return body

    def parse_response(self, body: dict[str, Any]) -> ParsedOutput:
        choice = _first_choice(body)
        text = choice.get("text")
        if not isinstance(text, str):
            raise MalformedResponse("choices[0] has no 'text'")
        return _parsed(text, choice, body, self._tokens(choice.get("logprobs")))

    @staticmethod
    def _tokens(logprobs: Any) -> tuple[list[TokenLogprob] | None, int]:
        if logprobs is None:
            return None, 0
        if not isinstance(logprobs, dict) or not isinstance(logprobs.get("tokens"), list):
            raise MalformedResponse("choices[0].logprobs has no 'tokens' list")
        tokens: list[Any] = logprobs["tokens"]
        values = logprobs.get("token_logprobs") or [None] * len(tokens)
        tops = logprobs.get("top_logprobs") or [None] * len(tokens)
        if not isinstance(values, list) or not isinstance(tops, list):
            raise MalformedResponse("choices[0].logprobs token_logprobs/top_logprobs are not lists")
        if len(values) != len(tokens) or len(tops) != len(tokens):
            raise MalformedResponse("choices[0].logprobs lists differ in length")
        read = _Logprobs()
        out = []
        for i, (token, value, top) in enumerate(zip(tokens, values, tops, strict=True)):
            if top is not None and not isinstance(top, dict):
                raise MalformedResponse(f"choices[0].logprobs.top_logprobs[{i}] is not an object")
            out.append(
                TokenLogprob(
                    token=_token_text(token, f"choices[0].logprobs.tokens[{i}]"),
                    logprob=read.value(value),
                    top=read.top((top or {}).items()),
                )
            )
        return out, read.dropped


@flavours.register("openai-chat")
class OpenAIChat(EndpointClient):
    """POST {base_url}/chat/completions with `messages`; logprobs as `content[i]` objects."""

    path = "/chat/completions"

    def build_request(self, probe: Probe, session_id: str) -> dict[str, Any]:
        messages = [m.model_dump() for m in probe.as_messages()]
        body = {
            "messages": messages,
            **_common_fields(self, probe, session_id),
            **_tool_body(probe),
        }
        if probe.params.logprobs:
            body["logprobs"] = True
            if probe.params.top_logprobs:
                body["top_logprobs"] = probe.params.top_logprobs
        return body

    def parse_response(self, body: dict[str, Any]) -> ParsedOutput:
        choice = _first_choice(body)
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedResponse("choices[0] has no 'message'")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise MalformedResponse("choices[0].message.content is not a string")
        parsed = _parsed(content or "", choice, body, self._tokens(choice.get("logprobs")))
        calls = tool_calls(message.get("tool_calls"))
        return parsed if calls is None else dataclasses.replace(parsed, tool_calls=calls)

    @staticmethod
    def _tokens(logprobs: Any) -> tuple[list[TokenLogprob] | None, int]:
        if logprobs is None:
            return None, 0
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if content is None:
            return None, 0
        if not isinstance(content, list):
            raise MalformedResponse("choices[0].logprobs.content is not a list")
        read = _Logprobs()
        out = []
        for i, item in enumerate(content):
            where = f"choices[0].logprobs.content[{i}]"
            if not isinstance(item, dict):
                raise MalformedResponse(f"{where} is not an object")
            alternatives = item.get("top_logprobs") or []
            if not isinstance(alternatives, list) or not all(
                isinstance(t, dict) for t in alternatives
            ):
                raise MalformedResponse(f"{where}.top_logprobs is not a list of objects")
            out.append(
                TokenLogprob(
                    token=_token_text(item.get("token"), f"{where}.token"),
                    logprob=read.value(item.get("logprob")),
                    top=read.top(
                        (
                            token_key(
                                _token_text(t.get("token"), f"{where}.top_logprobs[{j}].token"),
                                token_bytes(t.get("bytes")),
                            ),
                            t.get("logprob"),
                        )
                        for j, t in enumerate(alternatives)
                    ),
                    bytes=token_bytes(item.get("bytes")),
                )
            )
        return out, read.dropped
