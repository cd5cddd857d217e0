"""The control API under hostile bodies, over real loopback HTTP: huge, endless, deep, not UTF-8,
not JSON. Every answer is a 4xx with a one-line JSON error; the body is never read past its cap."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from canary.daemon.http import ControlServer, build_control_app
from canary.daemon.metrics import DaemonMetrics
from canary.store import Store, open_store
from canary.store.changes import list_changes

#: asyncio's largest single socket read (`selector_events._SelectorSocketTransport.max_size`).
ASYNCIO_READ_SIZE = 256 * 1024
#: uvicorn pauses reading a body once this much is buffered (`flow_control.HIGH_WATER_LIMIT`).
UVICORN_HIGH_WATER = 64 * 1024
CAP = 64 * 1024
CHUNK = 16 * 1024
DEPLOY = {"id": "deploy-9", "kind": "deploy", "select": "pool=tpu"}


@pytest.fixture
def server(store: Store) -> Iterator[ControlServer]:
    with ControlServer(build_control_app(store, DaemonMetrics(), max_body_bytes=CAP)) as running:
        yield running


def bytes_read(server: ControlServer) -> int:
    return int(server.app.state.body.bytes_read)


def one_line_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error, str) and "\n" not in error and "Traceback" not in error
    return error


def test_a_chunked_body_past_the_cap_is_413_and_left_unread(server: ControlServer) -> None:
    total = 64 * CAP  # 4 MiB, sent in 16 KiB chunks with no Content-Length
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"id": "x", "note": "'
        while sent < total:
            sent += CHUNK
            yield b"a" * CHUNK

    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.post("/changes", content=chunks())
    assert "larger than 65536 bytes" in one_line_error(response, 413)
    read = bytes_read(server)
    # The handler stops at the message that crosses the cap. One ASGI message holds what uvicorn
    # buffered before it paused reading (its 64 KiB high-water mark) plus the socket read that
    # crossed it (asyncio reads up to 256 KiB): that is all that may follow the cap, however busy
    # the machine. The client offered 4 MiB.
    assert CAP < read <= CAP + UVICORN_HIGH_WATER + ASYNCIO_READ_SIZE, read
    assert read < total / 8


def test_a_declared_length_past_the_cap_is_refused_before_reading(server: ControlServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as conn:
        conn.sendall(
            b"POST /changes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 419430400\r\n\r\n" + b"{" * 1024
        )
        reply = conn.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413")
    assert bytes_read(server) == 0


DEEP = "[" * 30_000 + "]" * 30_000  # under the cap, far past any parser's recursion


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (DEEP.encode(), "nested too deeply"),
        (json.dumps({**DEPLOY, "note": [[[[[[[[[["x"]]]]]]]]]]}).encode(), "nested more than"),
        (b'{"id": "caf\xe9", "kind": "deploy"}', "not UTF-8 (byte 11)"),
        (b'{"id": "d", "kind": "deploy"', "not JSON (line 1 column 29"),
        (b'{"id": 1' + b"1" * 5000 + b"}", "not usable JSON"),
        (b"", "not JSON"),
        (b"[]", "the list of changes is empty"),
        (b'"just a string"', "a change is an object"),
    ],
)
def test_bad_bodies_are_400_with_one_line_json(
    server: ControlServer, store: Store, body: bytes, expected: str
) -> None:
    response = httpx.post(f"{server.url}/changes", content=body, timeout=30)
    assert expected in one_line_error(response, 400)
    assert list_changes(store) == []
    # The server is still fine afterwards.
    assert httpx.post(f"{server.url}/changes", json=DEPLOY).status_code == 201


def test_surrogates_nul_and_deep_json_never_give_a_500(any_db_url: str) -> None:
    store = open_store(any_db_url)
    try:
        with ControlServer(build_control_app(store, None)) as server:
            body = '{"id": "deploy-\\ud800", "kind": "deploy", "note": "a\\u0000b"}'
            response = httpx.post(f"{server.url}/changes", content=body.encode())
            retry = httpx.post(f"{server.url}/changes", content=body.encode())
            deep = httpx.post(f"{server.url}/changes", content="[" * 100_000 + "]" * 100_000)
        assert "nested too deeply" in one_line_error(deep, 400)
        assert response.status_code == 201, response.text
        assert response.json()["id"] == "deploy-\ufffd"
        assert retry.status_code == 200, "a retry of the same body is recognised"
        (stored,) = list_changes(store)
        assert (stored.change_id, stored.note) == ("deploy-\ufffd", "a\ufffdb")
    finally:
        store.close()
