"""The daemon's control API: changes in, metrics and health out.

Routes: `POST /changes` (one change or a list, as `change_from_mapping` reads them; 201 when
something new was stored, 200 when all were identical retries, 400 on bad input, 409 when an id
is already stored with other content), `GET /changes?since=24h&until=…`, `GET /metrics`
(Prometheus text) and `GET /healthz` (200 while the database answers, else 503).
A body is read as a stream against `max_body_bytes` and refused (413) the moment it passes it;
anything that is not UTF-8 JSON of sane depth is a 400 with a one-line error, never a 500.
When the environment variable named by `token_env` is set, both `/changes` routes need
`Authorization: Bearer <token>`; `/metrics` and `/healthz` stay open for scrapers and probes.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from canary.errors import ConfigError
from canary.sanitize import one_line
from canary.store.changes import (
    ChangeConflictError,
    changes_from_data,
    list_changes,
    record_changes,
)
from canary.timespec import parse_time

if TYPE_CHECKING:
    import uvicorn

    from canary.daemon.metrics import DaemonMetrics
    from canary.store.repository import Store

log = logging.getLogger(__name__)

#: A change is a few hundred bytes; a body this large is refused unread.
MAX_BODY_BYTES = 1 << 20
_SOURCE = "POST /changes"


class _TooLarge(Exception):
    pass


@dataclass
class BodyStats:
    """What `POST /changes` has read of request bodies (`app.state.body`)."""

    bytes_read: int = 0
    """Body bytes taken off the connection, over all requests: a refused body stays unread."""


async def _read_capped(request: Request, cap: int, stats: BodyStats) -> bytes:
    """The body, read chunk by chunk; `_TooLarge` as soon as it passes `cap` bytes, so a huge
    (or endless chunked) body costs at most `cap` plus one chunk of memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        stats.bytes_read += len(chunk)
        if size > cap:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_body(body: bytes) -> Any:
    """The JSON of `body`; `ConfigError` (one line) when it is not UTF-8 JSON or too deep."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{_SOURCE}: the body is not UTF-8 (byte {exc.start}); send UTF-8 JSON"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{_SOURCE}: the body is not JSON (line {exc.lineno} column {exc.colno}: "
            f"{exc.msg}); send a change object or a list"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{_SOURCE}: the body is nested too deeply; send a change object or a list"
        ) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(
            f"{_SOURCE}: the body is not usable JSON ({one_line(exc)[:200]})"
        ) from None


Handler = Callable[[Request], Awaitable[Response]]


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _unavailable(exc: Exception) -> JSONResponse:
    # The message may name the database; it goes to the log, the client gets no detail.
    log.error("control API: database call failed: %s", exc)
    return _error("the database is unreachable; see the daemon's log", 503)


def build_control_app(
    store: Store,
    metrics: DaemonMetrics | None,
    *,
    token_env: str = "CANARY_CHANGE_TOKEN",
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The control API over `store`; `/metrics` answers 404 when `metrics` is None.

    `app.state.body` (`BodyStats`) counts the request-body bytes `POST /changes` has read, so
    a refused body can be seen to have been left unread.
    """
    from canary.store.health import DatabaseError, ping

    token = os.environ.get(token_env)
    if token is not None and not token.strip():
        raise ConfigError(f"${token_env} is set but empty; set a token or unset it")
    expected = token.strip().encode() if token else None

    def guarded(handler: Handler) -> Handler:
        async def check(request: Request) -> Response:
            if expected is not None:
                scheme, _, given = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), expected
                ):
                    return JSONResponse(
                        {"error": f"send the token of ${token_env} as Authorization: Bearer …"},
                        status_code=401,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
            return await handler(request)

        return check

    too_large = f"{_SOURCE}: body larger than {max_body_bytes} bytes; send one change or a list"
    body = BodyStats()

    async def post_changes(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return _error(too_large, 413)
        try:
            data = _parse_body(await _read_capped(request, max_body_bytes, body))
            specs = changes_from_data(data, source=_SOURCE)
            recorded = await run_in_threadpool(record_changes, store, specs)
        except _TooLarge:
            return _error(too_large, 413)
        except ChangeConflictError as exc:
            return _error(one_line(exc), 409)
        except ConfigError as exc:
            return _error(one_line(exc), 400)
        except DatabaseError as exc:
            return _unavailable(exc)
        except Exception as exc:  # a bug must cost one request, not a traceback to the client
            log.error("control API: POST /changes failed: %s", one_line(repr(exc))[:500])
            return _error("internal error; see the daemon's log", 500)
        created = [r for r in recorded if r.created]
        if metrics is not None:
            for _ in created:
                metrics.change_recorded("http")
        dicts = [r.change.to_dict() for r in recorded]
        return JSONResponse(
            dicts if isinstance(data, list) else dicts[0], status_code=201 if created else 200
        )

    async def get_changes(request: Request) -> Response:
        try:
            query = request.query_params
            bounds = {
                name: parse_time(query[name]) if name in query else None
                for name in ("since", "until")
            }
        except ConfigError as exc:
            return _error(f"GET /changes: {one_line(exc)}", 400)
        try:
            changes = await run_in_threadpool(list_changes, store, **bounds)
        except DatabaseError as exc:
            return _unavailable(exc)
        return JSONResponse([c.to_dict() for c in changes])

    async def get_metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        if metrics is None:
            return _error("metrics are not enabled on this daemon", 404)
        try:
            await run_in_threadpool(metrics.refresh_from_store, store)
        except DatabaseError as exc:
            # Scrapes still get the counters; the gauges keep their last values.
            log.error("control API: cannot refresh gauges from the store: %s", exc)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(ping, store)
        except DatabaseError as exc:
            log.error("control API: health check failed: %s", exc)
            return JSONResponse({"ok": False, "error": "database unreachable"}, status_code=503)
        return JSONResponse({"ok": True})

    routes = [
        Route("/changes", guarded(post_changes), methods=["POST"]),
        Route("/changes", guarded(get_changes), methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.body = body
    return app


def _serve(server: uvicorn.Server) -> None:
    with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind; start() says so
        server.run()


class ControlServer:
    """An ASGI app served by uvicorn in a background thread; `port=0` picks a free port."""

    def __init__(
        self, app: Starlette, host: str = "127.0.0.1", port: int = 0, *, grace_s: float = 5.0
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.grace_s = grace_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._port is None:
            raise RuntimeError("the control server is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """`http://host:port`, without a trailing slash."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ControlServer:
        """Listen and serve; returns once the socket accepts connections."""
        import uvicorn

        if self._thread is not None:
            raise RuntimeError("the control server is already running")
        server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=self.host,
                port=self.requested_port,
                log_level="warning",
                # uvicorn's records go to the daemon's own handlers, where secrets are scrubbed
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=max(1, round(self.grace_s)),
            )
        )
        thread = threading.Thread(
            target=_serve, args=(server,), name="canary-control-api", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=self.grace_s)
                raise ConfigError(
                    f"the control API cannot listen on {self.host}:{self.requested_port}; "
                    "is the port in use? pick another in the daemon config"
                )
            time.sleep(0.01)
        self._server, self._thread = server, thread
        self._port = int(server.servers[0].sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to `grace_s`), then return."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=self.grace_s + 5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None
        self._port = None

    def __enter__(self) -> ControlServer:
        return self.start() if self._thread is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
