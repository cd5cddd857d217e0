"""Greedy reference outputs for probes, computed once per model and cached in the store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from canary.reference._cache import ReferenceCache, cache_key
from canary.reference._model import ReferenceModel, ReferenceOutput

if TYPE_CHECKING:
    from canary.probes.model import Probe
    from canary.store import Store


def greedy_params(max_tokens: int, top_logprobs: int) -> dict[str, Any]:
    """The params a greedy reference output is keyed by. `top_keys` marks outputs whose
    alternatives are keyed by `token_key` and carry bytes: outputs cached before that (keyed by
    text, partial tokens all `"\ufffd"`) are never served again."""
    return {
        "mode": "greedy",
        "max_tokens": max_tokens,
        "top_logprobs": top_logprobs,
        "top_keys": "bytes",
    }


class ReferenceRunner:
    """Serves reference outputs from the cache and computes only the missing ones, in one batch.

    `computed` counts the prompts this runner actually ran through the model.
    """

    def __init__(self, model: ReferenceModel, store: Store) -> None:
        self.model = model
        self.cache = ReferenceCache(store)
        self.computed = 0

    def greedy(
        self,
        items: Sequence[str | Probe],
        max_tokens: int | None = None,
        top_logprobs: int = 5,
    ) -> list[ReferenceOutput]:
        """One greedy output per item (a prompt or a probe), in order.

        A probe's prompt is `probe.as_prompt()` and its `max_tokens` comes from its params
        unless `max_tokens` is given; plain prompts need `max_tokens`.
        """
        requests: list[tuple[str, dict[str, Any]]] = []
        for item in items:
            if isinstance(item, str):
                if max_tokens is None:
                    raise ValueError("max_tokens is required when passing prompt strings")
                requests.append((item, greedy_params(max_tokens, top_logprobs)))
            else:
                limit = max_tokens if max_tokens is not None else item.params.max_tokens
                requests.append((item.as_prompt(), greedy_params(limit, top_logprobs)))

        fingerprint = self.model.fingerprint
        keys = [cache_key(prompt, params) for prompt, params in requests]
        found = self.cache.get_many(fingerprint, keys)

        # Missing requests grouped by params (one batch each), each distinct prompt once.
        missing: dict[str, tuple[str, dict[str, Any]]] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in found:
                missing.setdefault(key, request)
        groups: dict[tuple[int, int], list[tuple[str, str]]] = {}
        for key, (prompt, params) in missing.items():
            group = (params["max_tokens"], params["top_logprobs"])
            groups.setdefault(group, []).append((key, prompt))
        for (limit, top_n), members in groups.items():
            outputs = self.model.generate_greedy([p for _, p in members], limit, top_n)
            self.computed += len(members)
            params = greedy_params(limit, top_n)
            self.cache.put_many(fingerprint, [(params, out) for out in outputs])
            for (key, _), out in zip(members, outputs, strict=True):
                found[key] = out
        return [found[key] for key in keys]
