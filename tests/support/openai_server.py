"""A real OpenAI-compatible HTTP server for tests, scriptable per request.

It fakes a third party's wire format (allowed by STYLE.md point 9) and imports nothing from canary:
tests talk to it over real HTTP through the same adapters production uses.

Each request's behaviour is chosen from its prompt (the completions `prompt`, or the last chat
message's content):

1. a directive ``[[name]]`` or ``[[name:arg]]`` anywhere in the prompt, else
2. the first key of the `behaviours` map that occurs in the prompt, else
3. `default`.

Behaviours (`n` counts attempts per distinct prompt, so retries can be scripted):

- ``ok`` — a normal answer ("Hello world"), with logprobs when asked, after `latency_s`
- ``slow[:s]`` — sleep `s` seconds (default 2) before answering
- ``fail500[:n]`` — HTTP 500 for the first `n` attempts (default 1), then ``ok``
- ``down`` — always HTTP 503
- ``ratelimit[:s[:n]]`` — HTTP 429 with ``Retry-After: s`` (default 1) for the first `n`
  attempts (default 1), then ``ok``; ``ratelimit:s:always`` never recovers
- ``notjson`` — 200 with a body that is not JSON
- ``nochoices`` — 200 with valid JSON that has no ``choices``
- ``oversized[:bytes]`` — 200 with a valid JSON body of at least `bytes` (default 2 MiB)
- ``oversizedchunked[:bytes]`` — the same, chunked, so no Content-Length warns the client
- ``disconnect`` — start a chunked 200 response, then drop the connection mid-body
- ``unauthorized`` — 401 whose body echoes the Authorization header (as careless servers do)
- ``badrequest`` — 400
- ``redirect`` — 307 to another host
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["REPLY_TOKENS", "FakeOpenAI", "SeenRequest", "serve_openai"]

#: The answer of the ``ok`` behaviour, token by token, with each token's logprob.
REPLY_TOKENS: list[tuple[str, float]] = [("Hello", -0.25), (" world", -0.5)]
#: Alternatives returned after the chosen token in top_logprobs.
_ALTERNATIVES: list[tuple[str, float]] = [("Hi", -2.0), (" there", -3.0), ("Hey", -4.0)]

_DIRECTIVE = re.compile(r"\[\[([a-z0-9]+)(?::([^\]]*))?\]\]")


@dataclass
class SeenRequest:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: Any
    prompt: str
    behaviour: str
    at: float = field(default_factory=time.monotonic)
    """`time.monotonic()` on arrival."""


class FakeOpenAI:
    """The server state; `app` is the ASGI app. Use `serve_openai` to run it."""

    def __init__(
        self,
        behaviours: Mapping[str, str] | None = None,
        *,
        default: str = "ok",
        served_by: str | None = "fake-pool-a",
        latency_s: float = 0.0,
    ) -> None:
        self.behaviours = dict(behaviours or {})
        self.default = default
        self.served_by = served_by
        self.latency_s = latency_s
        self.base_url = ""
        self.requests: list[SeenRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._attempts: Counter[str] = Counter()
        self.app = Starlette(
            routes=[
                Route("/v1/completions", self._handle, methods=["POST"]),
                Route("/v1/chat/completions", self._handle, methods=["POST"]),
            ]
        )

    def __str__(self) -> str:
        return self.base_url

    def attempts(self, prompt_part: str) -> int:
        """Requests seen whose prompt contains `prompt_part`."""
        return sum(1 for r in self.requests if prompt_part in r.prompt)

    async def _handle(self, request: Request) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._respond(request)
        finally:
            self.in_flight -= 1

    async def _respond(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": {"message": "body is not JSON"}}, status_code=400)
        chat = request.url.path.endswith("/chat/completions")
        prompt = _prompt_of(body, chat)
        name, arg = self._behaviour(prompt)
        self._attempts[prompt] += 1
        attempt = self._attempts[prompt]
        self.requests.append(
            SeenRequest(request.url.path, dict(request.headers), body, prompt, name)
        )
        headers = {"x-served-by": self.served_by} if self.served_by else {}

        if name == "slow":
            deadline = time.monotonic() + float(arg or 2.0)
            while time.monotonic() < deadline:
                if await request.is_disconnected():  # the client gave up: free the server
                    return Response(status_code=499)
                await asyncio.sleep(0.02)
        elif name == "fail500" and attempt <= int(arg or 1):
            return JSONResponse({"error": {"message": "boom"}}, 500, headers=headers)
        elif name == "down":
            return JSONResponse({"error": {"message": "unavailable"}}, 503, headers=headers)
        elif name == "ratelimit":
            seconds, _, times = (arg or "1").partition(":")
            if times == "always" or attempt <= int(times or 1):
                headers["retry-after"] = seconds
                return JSONResponse({"error": {"message": "slow down"}}, 429, headers=headers)
        elif name == "notjson":
            return Response("<html>502 Bad Gateway", 200, headers, media_type="text/html")
        elif name == "nochoices":
            return JSONResponse({"id": "x", "object": "chat.completion"}, headers=headers)
        elif name == "disconnect":
            return StreamingResponse(_broken_body(), headers=headers, media_type="application/json")
        elif name == "unauthorized":
            echoed = request.headers.get("authorization", "")
            message = f"invalid credentials: {echoed}"
            return JSONResponse({"error": {"message": message}}, 401, headers=headers)
        elif name == "redirect":
            return Response(
                status_code=307, headers={**headers, "location": "https://elsewhere/v1"}
            )
        elif name == "badrequest":
            return JSONResponse({"error": {"message": "bad request"}}, 400, headers=headers)

        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        answer = _chat_answer(body) if chat else _completion_answer(body)
        if name == "oversized":
            answer["padding"] = "x" * int(arg or 2 * 1024 * 1024)
        if name == "oversizedchunked":
            answer["padding"] = "x" * int(arg or 2 * 1024 * 1024)
            encoded = json.dumps(answer).encode()
            return StreamingResponse(_chunks(encoded), headers=headers, media_type="text/json")
        return JSONResponse(answer, headers=headers)

    def _behaviour(self, prompt: str) -> tuple[str, str | None]:
        match = _DIRECTIVE.search(prompt)
        if match:
            return match.group(1), match.group(2)
        for key, behaviour in self.behaviours.items():
            if key in prompt:
                name, _, arg = behaviour.partition(":")
                return name, arg or None
        name, _, arg = self.default.partition(":")
        return name, arg or None


def _prompt_of(body: Any, chat: bool) -> str:
    if not isinstance(body, dict):
        return ""
    if chat:
        messages = body.get("messages") or [{}]
        return str(messages[-1].get("content", ""))
    return str(body.get("prompt", ""))


def _top(n: int, token: str, logprob: float) -> list[tuple[str, float]]:
    return [(token, logprob), *_ALTERNATIVES][:n]


def _usage() -> dict[str, Any]:
    n = len(REPLY_TOKENS)
    return {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}


def _completion_answer(body: dict[str, Any]) -> dict[str, Any]:
    text = "".join(t for t, _ in REPLY_TOKENS)
    choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
    n = body.get("logprobs")
    if isinstance(n, int):
        choice["logprobs"] = {
            "tokens": [t for t, _ in REPLY_TOKENS],
            "token_logprobs": [lp for _, lp in REPLY_TOKENS],
            # legacy format: one {token: logprob} dict per position, or null when none asked
            "top_logprobs": [dict(_top(n, t, lp)) for t, lp in REPLY_TOKENS] if n else None,
            "text_offset": [0, len(REPLY_TOKENS[0][0])],
        }
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:8]}",
        "object": "text_completion",
        "model": body.get("model"),
        "choices": [choice],
        "usage": _usage(),
    }


def _chat_answer(body: dict[str, Any]) -> dict[str, Any]:
    text = "".join(t for t, _ in REPLY_TOKENS)
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "logprobs": None,
    }
    if body.get("logprobs"):
        n = int(body.get("top_logprobs") or 0)
        choice["logprobs"] = {
            "content": [
                {
                    "token": t,
                    "logprob": lp,
                    "bytes": list(t.encode()),
                    "top_logprobs": [
                        {"token": a, "logprob": alp, "bytes": list(a.encode())}
                        for a, alp in _top(n, t, lp)
                    ],
                }
                for t, lp in REPLY_TOKENS
            ]
        }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [choice],
        "usage": {**_usage(), "prompt_tokens_details": {"cached_tokens": 0}},
    }


async def _chunks(data: bytes, size: int = 16384) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _broken_body() -> AsyncIterator[bytes]:
    yield b'{"id": "x", "object": "chat.completion", "choices": [{"index": 0, '
    await asyncio.sleep(0.05)
    # An exception after the response started makes uvicorn drop the connection, leaving the
    # chunked body unterminated: what a crashing backend or a reset proxy looks like on the wire.
    raise ConnectionAbortedError("fake backend died mid-response")


@contextmanager
def serve_openai(
    behaviours: Mapping[str, str] | None = None,
    *,
    default: str = "ok",
    served_by: str | None = "fake-pool-a",
    latency_s: float = 0.0,
) -> Iterator[FakeOpenAI]:
    """Run a `FakeOpenAI` on 127.0.0.1 (a free port) in a background thread.

    Yields the server; `server.base_url` is ``http://127.0.0.1:PORT/v1``.
    """
    fake = FakeOpenAI(behaviours, default=default, served_by=served_by, latency_s=latency_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app,
        log_level="critical",
        lifespan="off",
        access_log=False,
        server_header=False,  # a served-by header appears only when a test asks for one
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake OpenAI server did not start")
        time.sleep(0.01)
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
