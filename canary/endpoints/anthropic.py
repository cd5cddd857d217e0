"""The Anthropic Messages API: POST {base_url}/messages, a second API family beside OpenAI's.

Only the wire format lives here; transport, retries (529 `overloaded_error` is a 5xx, retried
like one) and limits are `EndpointClient`'s. The key goes in `x-api-key` and every request
carries `anthropic-version` (overridable through the endpoint's `headers`).

Mapping from a probe: system messages become the top-level `system` text (joined by blank
lines), `stop` becomes `stop_sequences`, the session id is `metadata.user_id` (what the API
offers for a caller's end user), `top_k` is sent when set, `top_p` only when it filters (some
models refuse `temperature` and `top_p` together), and there is no `seed`. The API returns no
logprobs, so the flavour never asks for them: checks that need logprobs see none.

From a reply: the text blocks of `content`, joined, are the output (tool-use and thinking
blocks are not text); `stop_reason` maps to OpenAI's `finish_reason` (`end_turn` and
`stop_sequence` → `stop`, `max_tokens` → `length`, `tool_use` → `tool_calls`, `refusal` →
`content_filter`, others kept as sent); `usage.input_tokens` / `output_tokens` become
`prompt_tokens` / `completion_tokens`. As for OpenAI, a text field of the wrong type makes the
reply `malformed`; an error body's `error.type` and `error.message` become the row's detail.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from canary.endpoints.base import EndpointClient, MalformedResponse, ParsedOutput, flavours
from canary.probes.model import Probe

__all__ = ["ANTHROPIC_VERSION", "AnthropicMessages"]

#: The `anthropic-version` header sent unless the endpoint's `headers` set another.
ANTHROPIC_VERSION = "2023-06-01"

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_USAGE = {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens"}


@flavours.register("anthropic-messages")
class AnthropicMessages(EndpointClient):
    """POST {base_url}/messages with `messages` and `system`; text blocks, no logprobs."""

    path = "/messages"
    default_auth = "x-api-key"
    default_headers: ClassVar[dict[str, str]] = {"anthropic-version": ANTHROPIC_VERSION}
    logprobs_capable = False

    def build_request(self, probe: Probe, session_id: str) -> dict[str, Any]:
        p = probe.params
        messages = probe.as_messages()
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "max_tokens": p.max_tokens,
            "messages": [m.model_dump() for m in messages if m.role != "system"],
            "temperature": p.temperature,
            "metadata": {"user_id": session_id},
        }
        system = [m.content for m in messages if m.role == "system"]
        if system:
            body["system"] = "\n\n".join(system)
        if p.top_p < 1.0:
            body["top_p"] = p.top_p
        if p.top_k is not None:
            body["top_k"] = p.top_k
        if p.stop:
            body["stop_sequences"] = list(p.stop)
        return body

    def parse_response(self, body: dict[str, Any]) -> ParsedOutput:
        if body.get("type") == "error":
            raise MalformedResponse(f"HTTP 200 carrying an error: {_said(body) or 'no detail'}")
        content = body.get("content")
        if not isinstance(content, list):
            raise MalformedResponse("response has no 'content' list")
        texts = []
        for i, block in enumerate(content):
            if not isinstance(block, dict):
                raise MalformedResponse(f"content[{i}] is not an object")
            if block.get("type") != "text":
                continue
            text = block.get("text")
            if not isinstance(text, str):
                raise MalformedResponse(f"content[{i}].text is not a string")
            texts.append(text)
        reason = body.get("stop_reason")
        if reason is not None and not isinstance(reason, str):
            raise MalformedResponse("stop_reason is not a string")
        return ParsedOutput(
            text="".join(texts),
            finish_reason=None if reason is None else _FINISH.get(reason, reason),
            usage=_usage(body.get("usage")),
        )

    def error_message(self, body: bytes) -> str | None:
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
            return None
        return _said(decoded) if isinstance(decoded, dict) else None


def _said(body: dict[str, Any]) -> str | None:
    """``type: message`` of an Anthropic error body, or None if it is not one."""
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    kind, message = error.get("type"), error.get("message")
    parts = [str(v) for v in (kind, message) if isinstance(v, str) and v]
    return ": ".join(parts) or None


def _usage(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    counts = {
        _USAGE.get(k, k): v
        for k, v in usage.items()
        if isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
    }
    if "prompt_tokens" in counts and "completion_tokens" in counts:
        counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
    return counts
