"""HTTP front of the simulated fleet: OpenAI-compatible routes, admin routes, and a test harness.

Routes: `POST /v1/completions` and `/v1/chat/completions` (front door), the same under
`/pools/{pool}/v1/...` (one pool, directly), `GET /v1/models`, `GET /healthz`, and the admin API:
`GET /admin/state`, `GET /admin/stats`, `PUT /admin/pools/{pool}/faults`, `PUT /admin/router`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from canary.sim.fleet import AdminError, SimFleet
from canary.sim.fleetconfig import SimFleetConfig
from canary.sim.openai_api import (
    ChatRequest,
    RequestError,
    chat_body,
    completion_body,
    gen_request,
    parse_request,
)

SERVED_BY_HEADER = "x-served-pool"


def _fleet(request: Request) -> SimFleet:
    fleet: SimFleet = request.app.state.fleet
    return fleet


class _WireJSON(JSONResponse):
    """Writes a NaN logprob as `NaN`, as Python servers do when logits overflow (fp16_overflow);
    Starlette's default refuses non-finite floats and would turn the response into a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(message: str, status: int = 400, param: str | None = None) -> JSONResponse:
    return JSONResponse(RequestError(message, param).body(), status_code=status)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError("the request body is not valid JSON") from None


async def _serve(request: Request, kind: Literal["completions", "chat"]) -> JSONResponse:
    fleet = _fleet(request)
    pool = request.path_params.get("pool")
    if pool is not None and pool not in fleet.engines:
        return _error(f"no pool {pool!r}; pools: {', '.join(fleet.engines)}", 404)
    try:
        req = parse_request(kind, await _json(request))
        if req.model is not None and req.model != fleet.config.model_name:
            raise RequestError(
                f"model {req.model!r} does not exist; "
                f"this fleet serves {fleet.config.model_name!r}",
                "model",
                status=404,
            )
        prompt_ids = fleet.encode(req.prompt_text())
        if pool is None:
            session = request.headers.get(fleet.config.router.session_header) or req.user
            pool = fleet.route(session, len(prompt_ids)).pool
        room = fleet.engines[pool].max_context - len(prompt_ids)
        gen = gen_request(req, prompt_ids, room)
    except RequestError as exc:
        return JSONResponse(exc.body(), status_code=exc.status)
    name = fleet.config.model_name
    encoding = fleet.engines[pool].state.token_encoding
    if isinstance(req, ChatRequest) and req.tools:
        from canary.sim.tool_calls import CallTooLong, tool_reply

        try:
            reply = await tool_reply(fleet, pool, req, gen)
        except CallTooLong as exc:
            return _error(str(exc), param="tools")
        body = chat_body(req, reply.result, name, encoding, tool_calls=reply.calls)
        headers = {SERVED_BY_HEADER: pool} if fleet.served_by_header else None
        return JSONResponse(body, headers=headers)
    result = await fleet.generate(pool, gen)
    if isinstance(req, ChatRequest):
        body = chat_body(req, result, name, encoding)
    else:
        body = completion_body(req, result, name, encoding)
    headers = {SERVED_BY_HEADER: pool} if fleet.served_by_header else None
    return _WireJSON(body, headers=headers)


async def completions(request: Request) -> JSONResponse:
    return await _serve(request, "completions")


async def chat_completions(request: Request) -> JSONResponse:
    return await _serve(request, "chat")


async def models(request: Request) -> JSONResponse:
    name = _fleet(request).config.model_name
    return JSONResponse(
        {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "canary-sim"}]}
    )


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "pools": list(_fleet(request).engines)})


async def admin_state(request: Request) -> JSONResponse:
    return JSONResponse(_fleet(request).state())


async def admin_stats(request: Request) -> JSONResponse:
    return JSONResponse(_fleet(request).stats())


async def admin_pool_faults(request: Request) -> JSONResponse:
    fleet = _fleet(request)
    pool = request.path_params["pool"]
    if pool not in fleet.engines:
        return _error(f"no pool {pool!r}; pools: {', '.join(fleet.engines)}", 404)
    try:
        event = await fleet.update_pool(pool, await _json(request))
    except (AdminError, RequestError) as exc:
        return _error(str(exc))
    return JSONResponse({"event": event.as_dict(), "pool": fleet.pool_state(pool)})


async def admin_router(request: Request) -> JSONResponse:
    fleet = _fleet(request)
    try:
        event = fleet.update_router(await _json(request))
    except (AdminError, RequestError) as exc:
        return _error(str(exc))
    return JSONResponse({"event": event.as_dict(), "router": fleet.state()["router"]})


def build_app(fleet: SimFleetConfig) -> Starlette:
    """The fleet's ASGI app; loads the model now, starts the pool workers with the app."""
    sim = SimFleet(fleet)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sim.start()
        try:
            yield
        finally:
            sim.stop()

    routes = [
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/pools/{pool}/v1/completions", completions, methods=["POST"]),
        Route("/pools/{pool}/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/pools/{pool}/v1/models", models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/admin/state", admin_state, methods=["GET"]),
        Route("/admin/stats", admin_stats, methods=["GET"]),
        Route("/admin/pools/{pool}/faults", admin_pool_faults, methods=["PUT"]),
        Route("/admin/router", admin_router, methods=["PUT"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.fleet = sim
    return app


@dataclass
class RunningFleet:
    """A fleet served in a background thread."""

    base_url: str
    """`http://host:port`, without a trailing slash or `/v1`."""
    app: Starlette
    startup_s: float
    """Seconds from `running_fleet` being entered to the server accepting requests."""

    @property
    def sim(self) -> SimFleet:
        fleet: SimFleet = self.app.state.fleet
        return fleet

    def pool_url(self, pool: str) -> str:
        """Base URL of one pool's OpenAI API (ends in `/v1`)."""
        return f"{self.base_url}/pools/{pool}/v1"


@contextlib.contextmanager
def running_fleet(
    fleet: SimFleetConfig, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningFleet]:
    """Serve `fleet` with uvicorn in a background thread until the block exits."""
    import uvicorn

    began = time.monotonic()
    app = build_app(fleet)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="sim-fleet-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the simulated fleet failed to start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    try:
        yield RunningFleet(f"http://{shown}:{bound}", app, time.monotonic() - began)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
