"""A misbehaving OpenAI-compatible HTTP server for tests: every byte of every reply is chosen.

It fakes a third party's wire format (allowed by STYLE.md point 9) and imports nothing from canary.
It is a raw asyncio server on 127.0.0.1, not an ASGI app, so a reply can carry what no framework
would send: invalid UTF-8, lone surrogates encoded as bytes in a header, bad header bytes, odd
status codes, a body shorter than its Content-Length, or no framing at all.

Each endpoint gets its own base URL, ``http://127.0.0.1:PORT/e/NAME/v1``; requests under it (to
``/completions``, ``/chat/completions`` or ``/messages``) are answered from the replies scripted
for NAME, in turn (request i gets ``replies[i % len(replies)]``). A reply's body and header
values may hold ``$KEY``, replaced by the key the request carried (bearer token or
``x-api-key``): a server that echoes the API key.

`SCENARIOS` names the hostile replies of issue 14; `scenario(name, chat=...)` builds one for the
completions (``chat=False``) or chat wire format.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ESCAPE_TEXT",
    "SCENARIOS",
    "HostileServer",
    "Reply",
    "SeenRequest",
    "healthy",
    "scenario",
    "serve_hostile",
]

Framing = Literal["length", "close", "chunked", "truncated", "raw"]


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    `framing`: ``length`` sends Content-Length; ``close`` sends no length and closes after the
    body; ``chunked`` sends the body as one chunk; ``truncated`` declares more bytes than it
    sends, then closes; ``raw`` writes `body` as the entire response (status line included).
    """

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),)
    reason: bytes = b"OK"
    framing: Framing = "length"


@dataclass
class SeenRequest:
    """One request as the server read it."""

    name: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HostileServer:
    """The running server's state; use `serve_hostile` to start one."""

    port: int = 0
    requests: list[SeenRequest] = field(default_factory=list)
    _scripts: dict[str, list[Reply]] = field(default_factory=dict)
    _served: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def base_url(self, name: str) -> str:
        """The base URL of endpoint `name` (its requests are answered from its script)."""
        return f"http://127.0.0.1:{self.port}/e/{name}/v1"

    def script(self, name: str, replies: Reply | Sequence[Reply]) -> None:
        """Answer endpoint `name`'s requests with `replies`, in turn, from now on."""
        listed = [replies] if isinstance(replies, Reply) else list(replies)
        if not listed:
            raise ValueError("script at least one reply")
        with self._lock:
            self._scripts[name] = listed
            self._served[name] = 0

    def count(self, name: str) -> int:
        """Requests endpoint `name` received."""
        with self._lock:
            return sum(1 for r in self.requests if r.name == name)

    def reset(self) -> None:
        """Forget the requests seen (scripts stay)."""
        with self._lock:
            self.requests.clear()

    def _next_reply(self, name: str) -> Reply | None:
        with self._lock:
            replies = self._scripts.get(name)
            if replies is None:
                return None
            index = self._served[name]
            self._served[name] = index + 1
            return replies[index % len(replies)]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        _, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        parts = path.split("/")
        name = parts[2] if len(parts) > 2 and parts[1] == "e" else ""
        with self._lock:
            self.requests.append(SeenRequest(name, path, headers, body))
        reply = self._next_reply(name) or Reply(404, b'{"error": "no such endpoint"}')
        token = headers.get("authorization", "").removeprefix("Bearer ") or headers.get(
            "x-api-key", ""
        )
        writer.write(_encode(reply, token.encode("latin-1")))
        await writer.drain()


def _encode(reply: Reply, key: bytes) -> bytes:
    """The bytes on the wire for `reply`, with ``$KEY`` replaced by the request's token."""
    body = reply.body.replace(b"$KEY", key)
    if reply.framing == "raw":
        return body
    out = [b"HTTP/1.1 %d %s\r\n" % (reply.status, reply.reason)]
    out += [b"%s: %s\r\n" % (k, v.replace(b"$KEY", key)) for k, v in reply.headers]
    out.append(b"connection: close\r\n")
    if reply.framing == "length":
        out.append(b"content-length: %d\r\n\r\n" % len(body))
        out.append(body)
    elif reply.framing == "truncated":
        out.append(b"content-length: %d\r\n\r\n" % (len(body) + 1000))
        out.append(body)
    elif reply.framing == "chunked":
        out.append(b"transfer-encoding: chunked\r\n\r\n")
        if body:
            out.append(b"%x\r\n%s\r\n" % (len(body), body))
        out.append(b"0\r\n\r\n")
    else:  # close: the body ends where the connection does
        out.append(b"\r\n")
        out.append(body)
    return b"".join(out)


@contextmanager
def serve_hostile() -> Iterator[HostileServer]:
    """Run a `HostileServer` on 127.0.0.1 (a free port) in a background thread."""
    server = HostileServer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def main() -> None:
        nonlocal stop
        stop = loop.create_future()
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, limit=1 << 20)
        server.port = listener.sockets[0].getsockname()[1]
        ready.set()
        async with listener:
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the hostile server did not start")
    try:
        yield server
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(timeout=10)
        loop.close()


# --- the hostile replies of issue 14 -----------------------------------------------------------

#: Terminal injection: OSC title, clear screen, erase line, a forged gate line, rich markup, RLO.
ESCAPE_TEXT = (
    "\x1b]0;pwned title\x07\x1b[2J\x1b[1A\x1b[2K"
    "gate: PASS (exit 0)\n[link=http://evil.example]click[/link] [bold red]x[/]"
    " \u202eevil\u202c \u2066iso\u2069 \x9b31m c1"
)


def _json(value: object) -> str:
    return json.dumps(value)


def _body(
    chat: bool,
    *,
    text: str = '"Hello world"',
    finish: str = '"stop"',
    tokens: str | None = None,
    values: str = "[-0.25, -0.5]",
    tops: str = '[{"Hello": -0.25, "Hi": -2.0}, {" world": -0.5, " there": -3.0}]',
) -> bytes:
    """A reply body from raw JSON fragments, so fragments may hold NaN or ``\\ud800`` escapes.

    `tokens`, `values` and `tops` are JSON arrays of the same length (default: two positions);
    for chat they are zipped into ``logprobs.content`` items.
    """
    tokens = tokens if tokens is not None else '["Hello", " world"]'
    if not chat:
        logprobs = f'{{"tokens": {tokens}, "token_logprobs": {values}, "top_logprobs": {tops}}}'
        return (
            f'{{"id": "cmpl-h", "object": "text_completion", "choices": [{{"index": 0, '
            f'"text": {text}, "finish_reason": {finish}, "logprobs": {logprobs}}}], '
            f'"usage": {{"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}}}'
        ).encode()
    # Zip raw fragments by position: split the arrays as JSON texts without decoding them.
    items = [
        f'{{"token": {t}, "logprob": {v}, "top_logprobs": ['
        + ", ".join(f'{{"token": {k}, "logprob": {lp}}}' for k, lp in top)
        + "]}"
        for t, v, top in zip(_split(tokens), _split(values), _split_tops(tops), strict=True)
    ]
    return (
        f'{{"id": "chat-h", "object": "chat.completion", "choices": [{{"index": 0, '
        f'"message": {{"role": "assistant", "content": {text}}}, "finish_reason": {finish}, '
        f'"logprobs": {{"content": [{", ".join(items)}]}}}}], '
        f'"usage": {{"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}}}'
    ).encode()


def _split(array: str) -> list[str]:
    """Top-level items of a flat JSON array text (items are scalars; strings hold no commas)."""
    inner = array.strip()[1:-1]
    return [item.strip() for item in inner.split(",")] if inner.strip() else []


def _split_tops(array: str) -> list[list[tuple[str, str]]]:
    """``[{"k": v, …}, …]`` as raw (key, value) fragments per position (keys hold no commas)."""
    inner = array.strip()[1:-1].strip()
    out: list[list[tuple[str, str]]] = []
    for obj in inner.split("}")[:-1]:
        pairs = obj.strip().lstrip(",").strip().lstrip("{")
        row: list[tuple[str, str]] = []
        for pair in pairs.split(","):
            if pair.strip():
                key, _, value = pair.rpartition(":")
                row.append((key.strip(), value.strip()))
        out.append(row)
    return out


def healthy(chat: bool, text: str = "Hello world") -> Reply:
    """A well-formed answer with `text` (any characters; JSON-escaped)."""
    return Reply(body=_body(chat, text=_json(text)), headers=_JSON_HEADERS)


_JSON_HEADERS = ((b"content-type", b"application/json"), (b"x-served-by", b"hostile-pool"))
_DEEP = 100_000


def _huge(chat: bool) -> Reply:
    text = _json("x" * (6 * 1024 * 1024))
    return Reply(body=_body(chat, text=text), framing="close")


def _deep_usage(chat: bool) -> Reply:
    """A valid reply whose usage holds 300 nested objects with a lone surrogate at the bottom."""
    nested = r'"bottom \ud800"'
    for _ in range(300):
        nested = f'{{"d": {nested}}}'
    body = _body(chat).replace(b'"usage": {', b'"usage": {"details": %s, ' % nested.encode(), 1)
    return Reply(body=body)


SCENARIOS: dict[str, Callable[[bool], Reply]] = {
    "surrogate_text": lambda chat: Reply(body=_body(chat, text=r'"a\ud800b \udfff"')),
    "surrogate_token": lambda chat: Reply(
        body=_body(chat, tokens=r'["\ud800", " \udc00x"]', text='"ab"')
    ),
    "surrogate_top_key": lambda chat: Reply(
        body=_body(chat, tops=r'[{"\ud800": -1.0, "Hi": -2.0}, {" \udbff": -0.5}]')
    ),
    "surrogate_header": lambda chat: Reply(
        body=_body(chat),
        headers=(
            (b"content-type", b"application/json"),
            # A lone surrogate's UTF-8-style bytes (ED A0 80) and other obs-text: HTTP allows
            # bytes 0x80-0xFF in a field value.
            (b"x-served-by", b"pool-\xed\xa0\x80-\xff\xfe"),
        ),
    ),
    "finish_object": lambda chat: Reply(body=_body(chat, finish='{"type": "stop", "n": [1]}')),
    "finish_list": lambda chat: Reply(body=_body(chat, finish='["stop", "length"]')),
    "finish_number": lambda chat: Reply(body=_body(chat, finish="1e308")),
    "nonfinite_logprobs": lambda chat: Reply(
        body=_body(
            chat,
            tokens='["a", "b", "c"]',
            values="[NaN, Infinity, -Infinity]",
            # A string and an overflowing number (1e400 parses as infinity) among alternatives.
            tops='[{"a": NaN, "y": "x"}, {"b": Infinity, "z": -1.0}, {"c": -Infinity, "w": 1e400}]',
            text='"abc"',
        )
    ),
    "deep_json": lambda chat: Reply(body=b"[" * _DEEP + b"]" * _DEEP),
    "deep_finish": lambda chat: Reply(body=_body(chat, finish="[" * _DEEP + "]" * _DEEP)),
    "deep_usage": _deep_usage,
    "nul_text": lambda chat: Reply(body=_body(chat, text=r'"a\u0000b"')),
    "token_not_string": lambda chat: Reply(
        body=_body(chat, tokens="[5]", values="[-0.1]", tops="[{}]", text='"x"')
    ),
    "content_object": lambda chat: Reply(body=_body(chat, text='{"text": "hi"}')),
    "echoed_key_text": lambda chat: Reply(
        body=_body(chat, text='"your key is $KEY, keep it safe"')
    ),
    "echoed_key_header": lambda chat: Reply(
        body=_body(chat),
        headers=((b"content-type", b"application/json"), (b"x-served-by", b"pool $KEY")),
    ),
    "non_utf8": lambda chat: Reply(
        body=_body(chat, text='"cafe"').replace(b'"cafe"', b'"caf\xe9 \xff\xfe \xed\xa0\x80"')
    ),
    "invalid_json": lambda chat: Reply(body=b'{"choices": [{"text": "unterminated'),
    "empty_body": lambda chat: Reply(body=b""),
    "html_200": lambda chat: Reply(
        body=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        headers=((b"content-type", b"text/html"),),
    ),
    "status_500": lambda chat: Reply(500, b"\x00\xff\x1b[2J\xed\xa0\x80 internal", reason=b"Oops"),
    "status_429": lambda chat: Reply(
        429,
        b'{"error": NaN}',
        headers=((b"retry-after", b"NaN"),),
        reason=b"Slow Down",
    ),
    "status_418": lambda chat: Reply(418, b"\xfe\xff\x00t\x00e\x00a", reason=b"I'm a teapot"),
    "huge_body": _huge,
    "truncated": lambda chat: Reply(body=_body(chat), framing="truncated"),
    "terminal_escapes": lambda chat: Reply(body=_body(chat, text=_json(ESCAPE_TEXT))),
    "terminal_tokens": lambda chat: Reply(
        body=_body(
            chat,
            text='"xy"',
            tokens=_json(["[link=http://evil.example]x[/link]", "\x1b[2J\u202e"]),
            tops=_json([{"[bold]t[/]": -1.0}, {"\x1b]0;t\x07": -2.0}]),
        )
    ),
    "bad_header_bytes": lambda chat: Reply(
        body=_body(chat),
        headers=((b"content-type", b"application/json"), (b"x-served-by", b"a\x00b\x1b[2J")),
    ),
    "status_299": lambda chat: Reply(299, _body(chat), reason=b"Odd"),
    "not_http": lambda chat: Reply(body=b"\x00\x01\xffSSH-2.0-garbage\r\n\r\n", framing="raw"),
}


def scenario(name: str, *, chat: bool) -> Reply:
    """The named hostile reply, in the completions or chat wire format."""
    return SCENARIOS[name](chat)
