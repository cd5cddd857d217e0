"""A real HTTP server speaking the Anthropic Messages API's wire format, for tests.

It fakes a third party's wire format (allowed by STYLE.md point 9) and imports nothing from
canary. Like the real API it checks what a request must carry before answering: no
``x-api-key`` (or the wrong one) is HTTP 401 ``authentication_error``, no ``anthropic-version``
is HTTP 400 ``invalid_request_error``, and so is a body field the API does not define (canary
must never send OpenAI's ``logprobs``, ``seed`` or ``user`` here), a missing ``max_tokens``, a
``system`` role inside ``messages`` or a temperature outside 0..1. Errors use the API's shape,
``{"type": "error", "error": {"type": ..., "message": ...}}``.

The answer is chosen by a directive ``[[name]]`` or ``[[name:arg]]`` in the last user message:

- none — ``Hello world`` in one text block, ``stop_reason: end_turn``
- ``overloaded[:n]`` — HTTP 529 ``overloaded_error`` for the first `n` attempts (default 1;
  ``always`` never recovers), then the normal answer
- ``maxtokens`` — ``stop_reason: max_tokens``
- ``stopseq`` — ``stop_reason: stop_sequence``, naming the first of ``stop_sequences``
- ``tooluse`` — a text block, then a ``tool_use`` block, ``stop_reason: tool_use``
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["FakeAnthropic", "SeenRequest", "serve_anthropic"]

#: Body fields of a Messages request, as the API documents them.
_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
}
_DIRECTIVE = re.compile(r"\[\[([a-z]+)(?::([^\]]*))?\]\]")


@dataclass
class SeenRequest:
    """One request as the server saw it."""

    headers: dict[str, str]
    body: Any


class FakeAnthropic:
    """The server state; `app` is the ASGI app. Use `serve_anthropic` to run it."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.base_url = ""
        self.requests: list[SeenRequest] = []
        self._attempts: Counter[str] = Counter()
        self.app = Starlette(routes=[Route("/v1/messages", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(SeenRequest(dict(request.headers), body))
        key = request.headers.get("x-api-key")
        if key is None:
            return _error(401, "authentication_error", "x-api-key header is required")
        if key != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "There was an issue with the JSON body")
        problem = _invalid(body)
        if problem:
            return _error(400, "invalid_request_error", problem)
        return self._answer(body)

    def _answer(self, body: dict[str, Any]) -> JSONResponse:
        prompt = _last_user_text(body["messages"])
        found = _DIRECTIVE.search(prompt)
        name, arg = (found.group(1), found.group(2)) if found else ("ok", None)
        self._attempts[prompt] += 1
        if name == "overloaded" and (arg == "always" or self._attempts[prompt] <= int(arg or 1)):
            return _error(529, "overloaded_error", "Overloaded")
        content: list[dict[str, Any]] = [{"type": "text", "text": "Hello world"}]
        stop_reason, stop_sequence = "end_turn", None
        if name == "maxtokens":
            stop_reason = "max_tokens"
        elif name == "stopseq":
            stop_reason, stop_sequence = "stop_sequence", (body.get("stop_sequences") or ["?"])[0]
        elif name == "tooluse":
            content = [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
            ]
            stop_reason = "tool_use"
        return JSONResponse(
            {
                "id": f"msg_{len(self.requests):04d}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": {"input_tokens": len(prompt.split()) + 3, "output_tokens": 2},
            },
            headers={"request-id": f"req_{len(self.requests):04d}"},
        )


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status_code=status
    )


def _invalid(body: dict[str, Any]) -> str | None:
    """What the real API would refuse in `body`, or None."""
    extra = sorted(set(body) - _FIELDS)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    temperature = body.get("temperature", 1.0)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
        return "temperature: Input should be less than or equal to 1"
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict) or set(metadata) - {"user_id"}:
        return "metadata: Extra inputs are not permitted"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    return None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


@contextmanager
def serve_anthropic(api_key: str) -> Iterator[FakeAnthropic]:
    """Run a `FakeAnthropic` accepting `api_key` on 127.0.0.1 (a free port) in a thread.

    Yields the server; `server.base_url` is ``http://127.0.0.1:PORT/v1``.
    """
    fake = FakeAnthropic(api_key)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app, log_level="critical", lifespan="off", access_log=False, server_header=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake Anthropic server did not start")
        time.sleep(0.01)
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
