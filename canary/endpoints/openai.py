"""OpenAI-compatible wire formats: legacy `/completions` and `/chat/completions`.

Each flavour is only the wire format; transport, retries and limits live in `EndpointClient`.
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

from typing import Any

from canary.endpoints.base import EndpointClient, MalformedResponse, ParsedOutput, flavours
from canary.probes.model import Probe
from canary.records import TokenLogprob

__all__ = ["OpenAIChat", "OpenAICompletions"]


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


def _usage(body: dict[str, Any]) -> dict[str, int] | None:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    return {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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
        return ParsedOutput(
            text=text,
            finish_reason=choice.get("finish_reason"),
            tokens=self._tokens(choice.get("logprobs")),
            usage=_usage(body),
        )

    @staticmethod
    def _tokens(logprobs: Any) -> list[TokenLogprob] | None:
        if logprobs is None:
            return None
        if not isinstance(logprobs, dict) or not isinstance(logprobs.get("tokens"), list):
            raise MalformedResponse("choices[0].logprobs has no 'tokens' list")
        tokens: list[str] = logprobs["tokens"]
        values = logprobs.get("token_logprobs") or [None] * len(tokens)
        tops = logprobs.get("top_logprobs") or [None] * len(tokens)
        if len(values) != len(tokens) or len(tops) != len(tokens):
            raise MalformedResponse("choices[0].logprobs lists differ in length")
        return [
            TokenLogprob(
                token=str(token),
                logprob=_float(value),
                top={str(k): float(v) for k, v in (top or {}).items()},
            )
            for token, value, top in zip(tokens, values, tops, strict=True)
        ]


@flavours.register("openai-chat")
class OpenAIChat(EndpointClient):
    """POST {base_url}/chat/completions with `messages`; logprobs as `content[i]` objects."""

    path = "/chat/completions"

    def build_request(self, probe: Probe, session_id: str) -> dict[str, Any]:
        messages = [m.model_dump() for m in probe.as_messages()]
        body = {"messages": messages, **_common_fields(self, probe, session_id)}
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
        return ParsedOutput(
            text=content or "",
            finish_reason=choice.get("finish_reason"),
            tokens=self._tokens(choice.get("logprobs")),
            usage=_usage(body),
        )

    @staticmethod
    def _tokens(logprobs: Any) -> list[TokenLogprob] | None:
        if logprobs is None:
            return None
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if content is None:
            return None
        if not isinstance(content, list):
            raise MalformedResponse("choices[0].logprobs.content is not a list")
        return [
            TokenLogprob(
                token=str(item["token"]),
                logprob=_float(item.get("logprob")),
                top={str(t["token"]): float(t["logprob"]) for t in item.get("top_logprobs") or []},
            )
            for item in content
        ]
