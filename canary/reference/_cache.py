"""Reference outputs cached in the store (`canary.store.reference_cache`), so rounds never
recompute them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from canary.reference._model import ReferenceOutput

if TYPE_CHECKING:
    from canary.store import Store
    from canary.store.reference_cache import CachedOutput


def canonical_params(params: Mapping[str, Any]) -> str:
    """The params as canonical JSON (sorted keys, no spaces): the same dict gives the same text."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(prompt: str, params: Mapping[str, Any]) -> str:
    """SHA-256 of the prompt and the canonical params JSON, separated by a NUL byte."""
    return hashlib.sha256(
        prompt.encode("utf-8") + b"\0" + canonical_params(params).encode("utf-8")
    ).hexdigest()


class ReferenceCache:
    """Reference outputs by (model fingerprint, cache key), read from and written to the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_many(self, fingerprint: str, keys: Iterable[str]) -> dict[str, ReferenceOutput]:
        """The cached outputs among `keys`, by key; missing keys are simply absent."""
        from canary.store.reference_cache import get_reference_outputs

        found = get_reference_outputs(self.store, fingerprint, keys)
        return {key: _output(cached) for key, cached in found.items()}

    def put_many(
        self,
        fingerprint: str,
        entries: Iterable[tuple[Mapping[str, Any], ReferenceOutput]],
    ) -> int:
        """Store `(params, output)` pairs; returns how many were new (others were already there)."""
        from canary.store.reference_cache import CachedOutput, put_reference_outputs

        return put_reference_outputs(
            self.store,
            fingerprint,
            (
                CachedOutput(
                    cache_key(output.prompt, params),
                    output.prompt,
                    dict(params),
                    output.text,
                    list(output.tokens),
                )
                for params, output in entries
            ),
        )


def _output(cached: CachedOutput) -> ReferenceOutput:
    # eos is the only stop, so fewer tokens than max_tokens means the model stopped itself.
    max_tokens = cached.params.get("max_tokens")
    stopped = isinstance(max_tokens, int) and len(cached.tokens) < max_tokens
    return ReferenceOutput(
        prompt=cached.prompt,
        text=cached.text,
        tokens=cached.tokens,
        finish_reason="stop" if stopped else "length",
    )
