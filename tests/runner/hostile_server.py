"""A real HTTP server on 127.0.0.1 that answers like a broken OpenAI-compatible endpoint.

It fakes a third party's wire format (STYLE.md point 9): each reply is valid HTTP whose body or
headers are hostile in one way, the way misbehaving servers were seen to answer (issue 14). The
case is the first path segment, so one server serves every case: an endpoint's base_url is
``{server.base_url}/{case}/v1``. Bodies are written by hand-chosen JSON text, since a lone
surrogate escape, ``NaN`` and ``Infinity`` are what Python's json accepts but standard JSON does
not spell.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["CASES", "HostileServer", "serve_hostile"]

#: Depth of the "deep-json" body: far past what json (and the databases) recurse through.
DEEP = 100_000


def _chat(content: Any = "Hello world", **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                **choice,
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def _logprobs(*positions: tuple[Any, Any, list[tuple[Any, Any]]]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": t,
                "logprob": lp,
                "top_logprobs": [{"token": a, "logprob": v} for a, v in top],
            }
            for t, lp, top in positions
        ]
    }


def _dump(body: Any) -> bytes:
    # ensure_ascii writes a lone surrogate as the escape `\ud800`; allow_nan writes NaN/Infinity.
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode()


Reply = tuple[bytes, list[tuple[bytes, bytes]]]
Case = Callable[[str], Reply]
"""A case: the request's Authorization value → (body, extra raw headers)."""

_NAN, _INF = float("nan"), float("inf")

CASES: dict[str, Case] = {
    "surrogate-text": lambda _: (_dump(_chat("Hello \ud800 world")), []),
    "surrogate-token": lambda _: (
        _dump(
            _chat(
                logprobs=_logprobs(
                    ("Hello", -0.25, [("Hello", -0.25), ("\ud800x", -2.0)]),
                    ("\udc00", -0.5, [("\udc00", -0.5)]),
                )
            )
        ),
        [],
    ),
    "surrogate-top-key": lambda _: (_dump(_completion()), []),
    "surrogate-header": lambda _: (_dump(_chat()), [(b"x-served-by", b"pool-\xed\xa0\x80-\xff")]),
    "finish-object": lambda _: (_dump(_chat(finish_reason={"slice": [1, 2]})), []),
    "nan-logprobs": lambda _: (
        _dump(
            _chat(
                logprobs=_logprobs(
                    ("Hello", _NAN, [("Hello", _NAN), ("Hi", -_INF), ("Hey", -1.0)]),
                    (" world", _INF, [(" world", "abc"), (" there", 1e400)]),
                )
            )
        ),
        [],
    ),
    "deep-json": lambda _: (
        b'{"choices": [{"message": {"content": "x"}}], "extra": '
        + b"[" * DEEP
        + b"]" * DEEP
        + b"}",
        [],
    ),
    "deep-usage": lambda _: (
        _dump({**_chat(), "usage": {"details": _nested(300), "total_tokens": 5}}),
        [],
    ),
    "echo-key": lambda auth: (
        _dump(_chat(f"you sent {auth}")),
        [(b"x-served-by", auth.removeprefix("Bearer ").encode())],
    ),
    "nul-text": lambda _: (_dump(_chat("a\x00b")), []),
    "token-not-string": lambda _: (_dump(_chat(logprobs=_logprobs((5, -0.1, [])))), []),
    "content-object": lambda _: (_dump(_chat({"text": "hi"})), []),
}


def _completion() -> dict[str, Any]:
    """A legacy /completions reply whose top_logprobs keys are lone surrogates (and a NaN)."""
    logprobs = {
        "tokens": ["Hello", " world"],
        "token_logprobs": [-0.25, -0.5],
        "top_logprobs": [{"\ud800": -1.0, "Hello": -0.25}, {" world": -0.5, "\udfff": _NAN}],
    }
    choice = {"index": 0, "text": "Hello world", "finish_reason": "stop", "logprobs": logprobs}
    return {"id": "cmpl-x", "object": "text_completion", "choices": [choice]}


def _nested(depth: int) -> Any:
    value: Any = "bottom \ud800"
    for _ in range(depth):
        value = {"d": value}
    return value


@dataclass
class HostileServer:
    """The running server: `base_url` is ``http://127.0.0.1:PORT``; `requests` counts per case."""

    base_url: str
    requests: dict[str, int]

    def url(self, case: str) -> str:
        """The base_url of an endpoint that gets `case`."""
        return f"{self.base_url}/{case}/v1"


@contextmanager
def serve_hostile() -> Iterator[HostileServer]:
    """Run the hostile server on a free port of 127.0.0.1 in a background thread."""
    counts: dict[str, int] = {}

    async def handle(request: Request) -> Response:
        await request.body()
        case = request.path_params["case"]
        counts[case] = counts.get(case, 0) + 1
        body, extra = CASES[case](request.headers.get("authorization", ""))
        response = Response(body, 200, media_type="application/json")
        response.raw_headers.extend(extra)
        return response

    app = Starlette(
        routes=[
            Route("/{case}/v1/chat/completions", handle, methods=["POST"]),
            Route("/{case}/v1/completions", handle, methods=["POST"]),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="critical",
        lifespan="off",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the hostile server did not start")
        time.sleep(0.01)
    try:
        yield HostileServer(f"http://127.0.0.1:{port}", counts)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
