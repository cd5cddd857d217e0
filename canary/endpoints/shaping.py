"""Per-endpoint request shaping: extra body fields, dropped fields, headers and auth style.

Real servers differ from the OpenAI reference in ways only the fleet file knows: one adds its
own sampler defaults unless the body switches them off (`extra_body`), one refuses a field
canary sends (`drop_params`), one wants the key as `x-api-key` (`auth`). The flavour builds the
body from the probe; these rules are applied after, the same for every flavour, so what is
stored as the request is what was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.config.fleet import EndpointConfig

__all__ = ["auth_headers", "merged_headers", "shaped_body"]


def shaped_body(endpoint: EndpointConfig, body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with the endpoint's `extra_body` merged in and its `drop_params` removed.

    The config refuses `extra_body` keys canary sets itself, so the merge never overrides the
    probe; a dropped field a flavour does not send is simply absent already.
    """
    shaped = {**body, **endpoint.extra_body}
    for name in endpoint.drop_params:
        shaped.pop(name, None)
    return shaped


def merged_headers(defaults: Mapping[str, str], configured: Mapping[str, str]) -> dict[str, str]:
    """A flavour's default headers overridden, case-insensitively, by the configured ones."""
    overridden = {name.lower() for name in configured}
    kept = {name: value for name, value in defaults.items() if name.lower() not in overridden}
    return {**kept, **configured}


def auth_headers(style: str | None, key: str | None) -> dict[str, str]:
    """The header that carries `key` in `style`; none without a key or with style `none`.

    `style` None (an endpoint that sets no `auth`) is `bearer`, OpenAI's; a client passes its
    flavour's own default instead (`EndpointClient.default_auth`).
    """
    if not key or style == "none":
        return {}
    if style == "x-api-key":
        return {"x-api-key": key}
    return {"Authorization": f"Bearer {key}"}
