"""The running simulated fleet: engines per pool, the front door, run-time switches and events."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from canary.config.loading import format_validation_error
from canary.errors import ConfigError
from canary.sim.engine import GenRequest, GenResult, PoolEngine, PoolState
from canary.sim.fleetconfig import (
    TOKEN_ENCODINGS,
    ApproxTopk,
    CorruptLogits,
    PoolFaults,
    RopeScaling,
    SimFleetConfig,
    ToolCallFormat,
    merge_settings,
)
from canary.sim.router import FrontDoor, Route
from canary.sim.weights import ModelStore
from canary.sim.weights import weights_setting as _weights_setting


class AdminError(ValueError):
    """A bad admin request; the message is one line naming the field and the fix."""


_FAULT_KEYS = {"corrupt_logits", "approx_topk", "precision", "rope_scaling", "token_encoding"}
_FAULT_KEYS.add("tool_call_format")
_FAULT_KEYS |= {"weights", "group_size"}
_FAULT_KEYS |= {"fp16_overflow", "prompt_leak"}
_FAULT_KEYS.add("stale_prefix_cache")
_ROUTER_KEYS = {"misroute_share", "served_by_header"}


@dataclass
class ChangeEvent:
    """One run-time switch, recorded so a replay can line results up with it."""

    at: str
    target: str
    change: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "target": self.target, "change": self.change}


@dataclass
class RouterStats:
    requests: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_pool: Counter[str] = field(default_factory=Counter)


class SimFleet:
    """All pools of a fleet file, loaded and ready to serve."""

    def __init__(self, config: SimFleetConfig) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.config = config
        self.started = time.monotonic()
        self.store = ModelStore(config.model_path())
        self.tokenizer = self.store.tokenizer
        self.engines = {p.name: PoolEngine(p, self.store) for p in config.pools}
        router = config.router
        self.front_door = FrontDoor(
            config.short_pool_names(),
            config.long_pool_name(),
            misroute_share=router.misroute_share,
            short_context_max_tokens=router.short_context_max_tokens,
            sticky=router.sticky,
        )
        self.served_by_header = config.served_by_header
        self.events: list[ChangeEvent] = []
        self.router_stats = RouterStats()

    def start(self) -> None:
        for engine in self.engines.values():
            engine.start()

    def stop(self) -> None:
        for engine in self.engines.values():
            engine.stop()

    # -- serving -------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        ids = list(self.tokenizer(text)["input_ids"])
        if not ids and self.tokenizer.bos_token_id is not None:
            ids = [int(self.tokenizer.bos_token_id)]
        return ids

    def route(self, session: str | None, prompt_tokens: int) -> Route:
        route = self.front_door.route(session, prompt_tokens)
        self.router_stats.requests += 1
        self.router_stats.by_reason[route.reason] += 1
        self.router_stats.by_pool[route.pool] += 1
        return route

    async def generate(self, pool: str, request: GenRequest) -> GenResult:
        return await self.engines[pool].generate(request)

    # -- admin ---------------------------------------------------------------------------------

    async def update_pool(self, pool: str, body: Any) -> ChangeEvent:
        """Apply a partial fault update: a key set to an object merges, set to null turns off."""
        engine = self.engines.get(pool)
        if engine is None:
            raise KeyError(pool)
        if not isinstance(body, dict) or not body:
            raise AdminError(
                "the body must be a non-empty JSON object with any of: "
                + ", ".join(sorted(_FAULT_KEYS))
            )
        unknown = sorted(set(body) - _FAULT_KEYS)
        if unknown:
            raise AdminError(
                f"{unknown[0]}: unknown setting; use one of {', '.join(sorted(_FAULT_KEYS))}"
            )
        state = engine.state
        faults = state.faults
        try:
            corrupt = faults.corrupt_logits
            approx = faults.approx_topk
            if "corrupt_logits" in body:
                corrupt = _merge("corrupt_logits", faults.corrupt_logits, body, CorruptLogits)
            if "approx_topk" in body:
                approx = _merge("approx_topk", faults.approx_topk, body, ApproxTopk)
            rope = state.rope_scaling
            if "rope_scaling" in body:
                rope = _merge("rope_scaling", state.rope_scaling, body, RopeScaling)
            precision = body.get("precision", state.precision)
            if precision not in ("fp32", "bf16"):
                raise AdminError(f"precision: {precision!r} is not one of 'fp32', 'bf16'")
            encoding = body.get("token_encoding", state.token_encoding)
            if encoding not in TOKEN_ENCODINGS:
                raise AdminError(
                    f"token_encoding: {encoding!r} is not one of "
                    + ", ".join(repr(e) for e in TOKEN_ENCODINGS)
                )
            faults = PoolFaults(corrupt_logits=corrupt, approx_topk=approx)
            tool_format = state.faults.tool_call_format
            if "tool_call_format" in body:
                tool_format = _merge("tool_call_format", tool_format, body, ToolCallFormat)
            faults = faults.model_copy(update={"tool_call_format": tool_format})
            faults = faults.model_copy(update=_numeric_and_text_faults(state.faults, body))
            stale = _stale_prefix_cache(engine, state.faults, body)
            faults = faults.model_copy(update={"stale_prefix_cache": stale})
            new = PoolState(precision, rope, faults, encoding)
            new.weights, new.group_size = _weights_setting(body, state)
            await asyncio.to_thread(engine.set_state, new)
        except (ValueError, ConfigError) as exc:  # bad targets for this vocabulary, AdminError
            raise AdminError(str(exc)) from None
        return self._record(f"pool:{pool}", body)

    def update_router(self, body: Any) -> ChangeEvent:
        if not isinstance(body, dict) or not body:
            raise AdminError(
                "the body must be a non-empty JSON object: misroute_share, served_by_header"
            )
        unknown = sorted(set(body) - _ROUTER_KEYS)
        if unknown:
            raise AdminError(
                f"{unknown[0]}: unknown setting; use one of {', '.join(sorted(_ROUTER_KEYS))}"
            )
        share = body.get("misroute_share", self.front_door.misroute_share)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise AdminError(f"misroute_share: {share!r} is not a number from 0 to 1")
        served_by = body.get("served_by_header", self.served_by_header)
        if not isinstance(served_by, bool):
            raise AdminError(f"served_by_header: {served_by!r} is not true or false")
        if share > 0 and self.front_door.long_pool is None:
            raise AdminError("misroute_share: the fleet has no long-context pool to misroute to")
        self.front_door.misroute_share = float(share)
        self.served_by_header = served_by
        return self._record("router", body)

    def _record(self, target: str, change: dict[str, Any]) -> ChangeEvent:
        event = ChangeEvent(datetime.now(UTC).isoformat(), target, change)
        self.events.append(event)
        return event

    def pool_state(self, pool: str) -> dict[str, Any]:
        engine = self.engines[pool]
        state = engine.state
        return {
            "context": engine.pool.context,
            "precision": state.precision,
            "rope_scaling": state.rope_scaling.model_dump() if state.rope_scaling else None,
            "faults": state.faults.model_dump(mode="json"),
            "token_encoding": state.token_encoding,
            "weights": state.weights,
            "group_size": state.group_size,
            "max_batch_size": engine.pool.max_batch_size,
            "batch_window_ms": engine.pool.batch_window_ms,
            "prefix_cache": cache.model_dump() if (cache := engine.pool.prefix_cache) else None,
        }

    def state(self) -> dict[str, Any]:
        door = self.front_door
        return {
            "model": self.config.model_name,
            "model_path": str(self.store.path),
            "served_by_header": self.served_by_header,
            "router": {
                "sticky": door.sticky,
                "session_header": self.config.router.session_header,
                "short_pools": door.short_pools,
                "long_context_pool": door.long_pool,
                "misroute_share": door.misroute_share,
                "short_context_max_tokens": door.short_context_max_tokens,
            },
            "pools": {name: self.pool_state(name) for name in self.engines},
            "events": [e.as_dict() for e in self.events],
        }

    def stats(self) -> dict[str, Any]:
        rs = self.router_stats
        return {
            "uptime_s": round(time.monotonic() - self.started, 3),
            "router": {
                "requests": rs.requests,
                "by_reason": dict(rs.by_reason),
                "by_pool": dict(rs.by_pool),
            },
            "pools": {name: e.stats.as_dict() for name, e in self.engines.items()},
        }


def _numeric_and_text_faults(current: PoolFaults, body: dict[str, Any]) -> dict[str, Any]:
    """`fp16_overflow` and `prompt_leak` after the update: merged where set, else kept."""
    from canary.sim.fleetconfig import Fp16Overflow, PromptLeak

    kept: dict[str, Any] = {}
    for key, model in (("fp16_overflow", Fp16Overflow), ("prompt_leak", PromptLeak)):
        value = getattr(current, key)
        kept[key] = _merge(key, value, body, model) if key in body else value
    return kept


def _stale_prefix_cache(engine: PoolEngine, current: PoolFaults, body: dict[str, Any]) -> Any:
    """`stale_prefix_cache` after the update; only a pool with a prefix cache can have it."""
    from canary.sim.fleetconfig import StalePrefixCache

    key = "stale_prefix_cache"
    value = current.stale_prefix_cache
    if key in body:
        value = _merge(key, value, body, StalePrefixCache)
    if value is not None and engine.prefix_cache is None:
        raise AdminError(f"{key}: pool {engine.name!r} has no prefix cache; set prefix_cache")
    return value


def _merge(name: str, current: Any, body: dict[str, Any], model: Any) -> Any:
    try:
        return merge_settings(current, body[name], model)
    except ValidationError as exc:
        raise AdminError(format_validation_error(exc, name)) from None
    except ValueError as exc:
        raise AdminError(f"{name}: {exc}") from None
