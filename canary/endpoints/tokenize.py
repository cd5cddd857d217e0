"""How many (and which) tokens an endpoint's model sees for a prompt: its `/tokenize`, where
the server has one, else the `usage.prompt_tokens` of one tiny request.

vLLM and SGLang serve `POST {root}/tokenize` with `{"model", "prompt"}` (or `"messages"` with
the chat template applied) and answer `{"tokens": [...], "count": n}`; llama.cpp serves
`POST /tokenize` with `{"content", "add_special"}` and answers `{"tokens": [...]}`. `{root}` is
the base URL without its `/v1`. A 404 means the server has none. `canary doctor` compares the
answer with the reference's own encoding of the same rendered prompt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from canary.config.fleet import EndpointConfig
from canary.endpoints.shaping import auth_headers, merged_headers

__all__ = ["RemoteTokens", "api_root", "remote_tokens"]


@dataclass(frozen=True)
class RemoteTokens:
    """What the endpoint said about one prompt's tokens."""

    count: int | None
    """Prompt tokens; None when the endpoint could not say."""
    ids: list[int] | None = None
    """The token ids, from a `/tokenize` that lists them."""
    via: str = ""
    """`POST …/tokenize` or `usage.prompt_tokens`; or what went wrong, when `count` is None."""


def api_root(base_url: str) -> str:
    """The server root a native `/tokenize` lives under: ``base_url`` without its `/v1`."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _headers(endpoint: EndpointConfig) -> dict[str, str]:
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
    return merged_headers(
        {"User-Agent": "canary", **auth_headers(endpoint.auth or "bearer", key)}, endpoint.headers
    )


def _ids(body: Any) -> tuple[int | None, list[int] | None]:
    if not isinstance(body, dict):
        return None, None
    tokens = body.get("tokens")
    ids = (
        [int(t) for t in tokens]
        if isinstance(tokens, list) and all(isinstance(t, int) for t in tokens)
        else None
    )
    count = body.get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        return count, ids
    return (len(ids), ids) if ids is not None else (None, None)


async def _native(
    client: httpx.AsyncClient,
    endpoint: EndpointConfig,
    prompt: str | None,
    messages: Sequence[Mapping[str, str]] | None,
) -> RemoteTokens | None:
    """The endpoint's `/tokenize`, or None when it has none (404/405, or no such route)."""
    url = f"{api_root(endpoint.base_url)}/tokenize"
    openai_style: dict[str, Any] = {"model": endpoint.model}
    if messages is not None:
        openai_style |= {"messages": list(messages), "add_generation_prompt": True}
    else:
        openai_style |= {"prompt": prompt, "add_special_tokens": True}
    bodies = [openai_style]
    if messages is None:
        bodies.append({"content": prompt, "add_special": True})  # llama.cpp
    for body in bodies:
        response = await client.post(url, json=body)
        if response.status_code in (404, 405):
            return None
        if response.status_code >= 400:
            continue  # the other dialect may be the one this server speaks
        try:
            count, ids = _ids(response.json())
        except ValueError:
            return None
        if count is not None:
            return RemoteTokens(count, ids, f"POST {url}")
    return None


async def remote_tokens(
    endpoint: EndpointConfig,
    timeout_s: float,
    *,
    prompt: str | None = None,
    messages: Sequence[Mapping[str, str]] | None = None,
) -> RemoteTokens:
    """The endpoint's token count (and ids, where it lists them) for ``prompt`` (a completion)
    or ``messages`` (a chat, with the server's own template applied).

    Tries the server's `/tokenize`; without one, sends one request of one token and reads
    `usage.prompt_tokens`. Never raises for what the server does: a failure is a
    `RemoteTokens` with `count` None and `via` saying what happened.
    """
    chat = messages is not None
    async with httpx.AsyncClient(timeout=timeout_s, headers=_headers(endpoint)) as client:
        try:
            native = await _native(client, endpoint, prompt, messages)
            if native is not None:
                return native
            path = "/chat/completions" if chat else "/completions"
            body: dict[str, Any] = {"model": endpoint.model, "max_tokens": 1, "temperature": 0}
            body |= {"messages": list(messages or [])} if chat else {"prompt": prompt}
            body = {**body, **endpoint.extra_body}
            for name in endpoint.drop_params:
                body.pop(name, None)
            response = await client.post(endpoint.base_url.rstrip("/") + path, json=body)
        except httpx.HTTPError as exc:
            return RemoteTokens(None, via=f"{type(exc).__name__}: {exc}".strip())
        if response.status_code >= 400:
            return RemoteTokens(None, via=f"HTTP {response.status_code} from {path}")
        try:
            usage = response.json().get("usage")
        except (ValueError, AttributeError):
            usage = None
        count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if not isinstance(count, int) or isinstance(count, bool):
            return RemoteTokens(None, via=f"{path} reported no usage.prompt_tokens")
        return RemoteTokens(count, None, "usage.prompt_tokens")
