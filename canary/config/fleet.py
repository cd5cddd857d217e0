"""The fleet config: which endpoints canary probes, how, and which cohort each belongs to."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

#: Cohort label keys with a documented meaning. Any other key is allowed as a user label.
STANDARD_LABELS = (
    "pool",
    "pools",
    "hardware",
    "platform",
    "region",
    "route",
    "context",
    "load",
)
"""``pools`` is for front doors: the pools behind them joined by ``+`` (``gpu-a+tpu-b``), so a
change recorded on one pool is known to touch the front door too."""

SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
"""Names of endpoints, pools, schedules, load shapes and sinks."""
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""What a `*_env` key must hold: the name of an environment variable, never its value."""
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


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


class Limits(Strict):
    """Transport limits for one endpoint; fleet `defaults` apply where an endpoint sets none."""

    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    """Whole-request timeout in seconds, retries not included."""
    connect_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    """TCP/TLS connect timeout in seconds."""
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Retries after the first attempt, on transport errors, 429 and 5xx."""
    backoff_s: Annotated[float, Field(ge=0, le=60)] = 0.5
    """First retry delay; doubles each retry (with jitter), capped at `backoff_max_s`."""
    backoff_max_s: Annotated[float, Field(ge=0, le=600)] = 8.0
    """Longest delay between two retries."""
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 4
    """Requests in flight at once against this endpoint."""
    rate_limit_rps: Annotated[float | None, Field(gt=0)] = None
    """Most requests started per second against this endpoint; none means unlimited."""
    max_response_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    """A response body larger than this is recorded as an `oversized` error, not parsed."""


class LimitsOverride(Strict):
    """Per-endpoint overrides of the fleet `defaults`; unset fields inherit."""

    timeout_s: Annotated[float | None, Field(gt=0, le=600)] = None
    connect_timeout_s: Annotated[float | None, Field(gt=0, le=120)] = None
    max_retries: Annotated[int | None, Field(ge=0, le=10)] = None
    backoff_s: Annotated[float | None, Field(ge=0, le=60)] = None
    backoff_max_s: Annotated[float | None, Field(ge=0, le=600)] = None
    concurrency: Annotated[int | None, Field(ge=1, le=1024)] = None
    rate_limit_rps: Annotated[float | None, Field(gt=0)] = None
    max_response_bytes: Annotated[int | None, Field(ge=1024)] = None

    def apply(self, base: Limits) -> Limits:
        changes = {k: v for k, v in self.model_dump().items() if v is not None}
        return base.model_copy(update=changes)


class EndpointConfig(Strict):
    """One probed endpoint: a front door, a pool reached directly, or a region."""

    name: str
    """Unique slug for this endpoint (lowercase letters, digits, `-`, `_`, `.`)."""
    base_url: str
    """Base URL up to and including the API prefix, e.g. `https://llm.internal/v1`."""
    flavour: str = "openai-chat"
    """Wire format: `openai-completions` or `openai-chat` (see `canary endpoints flavours`)."""
    model: str
    """Model name sent in each request and recorded as the `model` cohort label."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key. Keys never go in config files."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Cohort labels: pool, hardware, platform, region, route, context, or any key of yours."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra non-secret request headers."""
    served_by_headers: list[str] = Field(
        default_factory=lambda: ["x-served-by", "x-backend", "x-served-pool", "server"]
    )
    """Response headers that may name the backend that served a request; the first present wins."""
    supports_logprobs: bool = True
    """Whether the endpoint returns logprobs; if not, canary never asks for them."""
    limits: LimitsOverride = Field(default_factory=LimitsOverride)
    """Overrides of the fleet `defaults` for this endpoint."""

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        return check_slug(value, "gpu-us-east")

    @field_validator("base_url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return check_http_url(value).rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_VAR_NAME.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (e.g. 'OPENAI_API_KEY'), not a key"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} must be lowercase snake_case")
            if key in ("endpoint", "model"):
                raise ValueError(f"label {key!r} is set by canary from the endpoint itself")
        return value

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.lower() in ("authorization", "x-api-key", "api-key"):
                raise ValueError(f"header {key!r} would hold a secret; use api_key_env instead")
        return value

    def cohort_labels(self) -> dict[str, str]:
        """The labels stored with every result: user labels plus `endpoint` and `model`."""
        return {**self.labels, "endpoint": self.name, "model": self.model}


class FleetConfig(Strict):
    """The whole fleet file."""

    version: FormatVersion = 1
    """Config format version."""
    database_url: str | None = None
    """SQLAlchemy URL of the store; `CANARY_DATABASE_URL` and `--db` take precedence."""
    defaults: Limits = Field(default_factory=Limits)
    """Transport limits for endpoints that do not override them."""
    endpoints: list[EndpointConfig]
    """The endpoints to probe."""

    @model_validator(mode="after")
    def _unique_names(self) -> FleetConfig:
        seen: set[str] = set()
        for endpoint in self.endpoints:
            if endpoint.name in seen:
                raise ValueError(f"endpoint name {endpoint.name!r} appears twice; names are unique")
            seen.add(endpoint.name)
        return self

    @field_validator("endpoints")
    @classmethod
    def _not_empty(cls, value: list[EndpointConfig]) -> list[EndpointConfig]:
        if not value:
            raise ValueError("'endpoints' is empty; list at least one endpoint")
        return value

    def limits_for(self, endpoint: EndpointConfig) -> Limits:
        return endpoint.limits.apply(self.defaults)

    def endpoint(self, name: str) -> EndpointConfig:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        from canary.errors import ConfigError

        known = ", ".join(e.name for e in self.endpoints)
        raise ConfigError(f"no endpoint named {name!r} in the fleet config (known: {known})")
