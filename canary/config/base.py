"""What every canary config file shares: strict models, names, URLs, the format version."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict

SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
"""Names of endpoints, pools, schedules, load shapes and sinks."""
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""What a `*_env` key must hold: the name of an environment variable, never its value."""
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def check_slug(value: str, example: str) -> str:
    """``value`` if it is a `SLUG`, else the one error every config file gives for names."""
    if not SLUG.match(value):
        raise ValueError(f"use lowercase letters, digits, '-', '_' or '.', e.g. {example!r}")
    return value


def check_http_url(value: str, example: str = "http://127.0.0.1:8000/v1") -> str:
    """``value`` if every request to it can be sent, else the one-line reason and fix.

    Checked at load time, the way httpx will read it: scheme http(s), a host, a port in
    1-65535, balanced IPv6 brackets (``http://[::1]:8000/v1``), no credentials, query or
    fragment (paths are appended to it). Otherwise a typo surfaces only as an error row per
    request, long after the config was accepted.
    """
    fix = f"write e.g. {example!r}"
    if value != value.strip() or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{value!r} holds spaces or control characters; {fix}")
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, e.g. {example!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        if "[" in value or "]" in value:
            fix = "an IPv6 host goes in brackets, e.g. 'http://[::1]:8000/v1'"
        raise ValueError(f"{value!r} is not a valid URL ({exc}); {fix}") from None
    if not parts.hostname:
        raise ValueError(f"{value!r} names no host; {fix}")
    if port == 0:
        raise ValueError(f"{value!r}: port 0 cannot be connected to; {fix}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{value!r} holds credentials; put the key in api_key_env instead")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r} has a query or fragment; canary appends the API path, {fix}")
    import httpx

    try:
        httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc}); {fix}") from None
    return value


def _known_version(value: int) -> int:
    if value != 1:
        raise ValueError("only version 1 exists; write 'version: 1'")
    return value


FormatVersion = Annotated[int, AfterValidator(_known_version)]
"""The `version:` key of canary's config files (only 1 exists)."""


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
