"""OpenAI wire format of the simulated fleet: request validation and response bodies."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from canary.records import whole_characters
from canary.sim.engine import GenRequest, GenResult, TokenInfo
from canary.sim.fleetconfig import TokenEncoding


class RequestError(Exception):
    """A request the API refuses with 400 and an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": str(self),
                "type": "invalid_request_error",
                "param": self.param,
                "code": None,
            }
        }


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    temperature: Annotated[float, Field(ge=0, le=2)] = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    top_k: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    n: Literal[1] = 1
    stream: Literal[False] = False
    presence_penalty: Literal[0] = 0
    frequency_penalty: Literal[0] = 0

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop)
        if len(stops) > 4:
            raise RequestError("at most 4 stop sequences", "stop")
        return stops

    def top_k_or_none(self) -> int | None:
        # OpenAI-compatible servers (vLLM) treat top_k -1 or 0 as "off".
        return self.top_k if self.top_k is not None and self.top_k > 0 else None


class CompletionRequest(_Common):
    prompt: str | list[str]
    logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    echo: Literal[False] = False

    def prompt_text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise RequestError("this server takes exactly one prompt per request", "prompt")
        return self.prompt[0]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "developer"]
    content: str
    name: str | None = None


class FunctionDef(BaseModel):
    """A function the model may call: its name, what it does, its arguments' JSON Schema."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionDef


class _FunctionName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class NamedToolChoice(BaseModel):
    """`tool_choice` naming the one function the model must call."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: _FunctionName


class ChatRequest(_Common):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int | None, Field(ge=1)] = None
    logprobs: bool = False
    top_logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    tools: list[ToolDef] | None = None
    tool_choice: Literal["auto", "required", "none"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    """Accepted for compatibility; this server makes at most one call per reply."""

    @model_validator(mode="after")
    def _top_needs_logprobs(self) -> ChatRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    @model_validator(mode="after")
    def _tools_consistent(self) -> ChatRequest:
        from canary.sim.tool_calls import compile_schema

        names = [t.function.name for t in self.tools or []]
        if len(set(names)) < len(names):
            raise ValueError("tools: function names must be unique")
        for tool in self.tools or []:
            compile_schema(tool.function.parameters)  # SchemaUnsupported is a ValueError
        choice = self.tool_choice
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise ValueError(f"tool_choice names {choice.function.name!r}, not one of the tools")
        if choice == "required" and not names:
            raise ValueError("tool_choice 'required' needs tools")
        return self

    def tool_mode(self) -> str:
        """`none`, `auto`, `required`, or the name of the function that must be called."""
        if isinstance(self.tool_choice, NamedToolChoice):
            return self.tool_choice.function.name
        if self.tool_choice is not None:
            return self.tool_choice
        return "auto" if self.tools else "none"

    def offered(self) -> dict[str, dict[str, Any]]:
        """Each tool's `parameters`, by function name."""
        return {t.function.name: t.function.parameters for t in self.tools or []}

    def prompt_text(self) -> str:
        """Messages as `role: content` lines, then `assistant:` (as `Probe.as_prompt`); the
        tools offered, if any, come first on a `tools:` line."""
        from canary.sim.tool_calls import tools_line

        head = ""
        if self.tools:
            head = tools_line(
                [
                    (t.function.name, t.function.description, t.function.parameters)
                    for t in self.tools
                ]
            )
        return head + "".join(f"{m.role}: {m.content}\n" for m in self.messages) + "assistant:"


DEFAULT_MAX_TOKENS = 16


def parse_request(
    kind: Literal["completions", "chat"], body: Any
) -> CompletionRequest | ChatRequest:
    """Validate a JSON body; raise `RequestError` naming the first bad field."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model: type[CompletionRequest] | type[ChatRequest] = (
        CompletionRequest if kind == "completions" else ChatRequest
    )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unrecognized request argument"
        elif first["type"] == "missing":
            msg = "required argument is missing"
        raise RequestError(f"{param}: {msg}" if param else msg, param) from None


def gen_request(
    req: CompletionRequest | ChatRequest, prompt_ids: list[int], room: int
) -> GenRequest:
    """The engine request; `room` is how many tokens fit after the prompt."""
    if isinstance(req, ChatRequest):
        max_tokens = req.max_completion_tokens or req.max_tokens
        logprobs = (req.top_logprobs or 0) if req.logprobs else None
    else:
        max_tokens = req.max_tokens
        logprobs = req.logprobs
    wanted = max_tokens or min(DEFAULT_MAX_TOKENS, room)
    if room < 1 or wanted > room:
        raise RequestError(
            f"prompt ({len(prompt_ids)} tokens) plus max_tokens ({wanted}) exceeds this "
            f"model's context; shorten the prompt or lower max_tokens",
            "max_tokens",
        )
    return GenRequest(
        prompt_ids=prompt_ids,
        max_tokens=wanted,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k_or_none(),
        seed=req.seed,
        stop=req.stops(),
        logprobs=logprobs,
    )


def _usage(result: GenResult) -> dict[str, int]:
    n = len(result.tokens)
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": n,
        "total_tokens": result.prompt_tokens + n,
    }


def completion_body(
    req: CompletionRequest,
    result: GenResult,
    model: str,
    encoding: TokenEncoding = "replacement",
) -> dict[str, Any]:
    logprobs = None
    if req.logprobs is not None:
        tokens = [_spelled(t.text, t.raw, encoding, chat=False)[0] for t in result.tokens]
        logprobs = {
            "tokens": tokens,
            "token_logprobs": [t.logprob for t in result.tokens],
            "top_logprobs": (
                [_top_map(t, encoding) for t in result.tokens] if req.logprobs > 0 else None
            ),
            "text_offset": _offsets(tokens),
        }
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": result.text,
                "logprobs": logprobs,
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": _usage(result),
    }


def chat_body(
    req: ChatRequest,
    result: GenResult,
    model: str,
    encoding: TokenEncoding = "replacement",
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The reply; with `tool_calls`, the message carries them, `content` is null and the
    finish reason `tool_calls`, as OpenAI writes a call."""
    logprobs = None
    if req.logprobs:
        logprobs = {"content": [_chat_logprob(t, encoding) for t in result.tokens]}
    message: dict[str, Any] = {"role": "assistant", "content": result.text}
    finish = result.finish_reason
    if tool_calls:
        message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
        finish = "tool_calls"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": finish,
            }
        ],
        "usage": _usage(result),
    }


def _spelled(
    text: str, raw: bytes | None, encoding: TokenEncoding, chat: bool
) -> tuple[str, list[int]]:
    """A token as this pool writes it: its text, and its `bytes` list (chat).

    Only a token that ends inside a character is written differently per encoding; every
    other token is its text, and its bytes are that text's.
    """
    if raw is None or whole_characters(raw):
        return text, list(text.encode("utf-8"))
    if encoding == "empty":
        return "", []
    if encoding == "bytes":
        escaped = "".join(f"\\x{b:02x}" for b in raw)
        return (escaped if chat else f"bytes:{escaped}"), list(raw)
    return text, list(text.encode("utf-8"))  # the server encodes its own U+FFFD


def _alternatives(t: TokenInfo) -> list[tuple[str, float, bytes | None]]:
    raws = t.top_raw if len(t.top_raw) == len(t.top) else [None] * len(t.top)
    return [(text, lp, raw) for (text, lp), raw in zip(t.top, raws, strict=True)]


def _chat_logprob(t: TokenInfo, encoding: TokenEncoding) -> dict[str, Any]:
    token, raw = _spelled(t.text, t.raw, encoding, chat=True)
    top = []
    for text, lp, alt_raw in _alternatives(t):
        alt, alt_bytes = _spelled(text, alt_raw, encoding, chat=True)
        top.append({"token": alt, "logprob": lp, "bytes": alt_bytes})
    return {"token": token, "logprob": t.logprob, "bytes": raw, "top_logprobs": top}


def _top_map(t: TokenInfo, encoding: TokenEncoding) -> dict[str, float]:
    """The legacy `{token: logprob}` map. Distinct ids can share a written token: most servers
    keep the likelier; vLLM builds the map in rank order, so the last (least likely) wins."""
    out: dict[str, float] = {}
    for text, logprob, raw in _alternatives(t):
        written = _spelled(text, raw, encoding, chat=False)[0]
        if encoding == "empty":
            out[written] = logprob
        else:
            out.setdefault(written, logprob)
    return out


def _offsets(tokens: list[str]) -> list[int]:
    offsets, at = [], 0
    for token in tokens:
        offsets.append(at)
        at += len(token)
    return offsets
