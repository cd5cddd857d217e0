"""The fleet config: which endpoints canary probes, how, and which cohort each belongs to."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from canary.config.base import (
    ENV_VAR_NAME,
    LABEL_KEY,
    SLUG,
    FormatVersion,
    Strict,
    check_http_url,
    check_slug,
)
from canary.config.reference import ReferenceConfig
from canary.config.shaping import (
    check_drop_params,
    check_extra_body,
    check_header_labels,
    check_header_value,
    check_record_headers,
)

__all__ = [
    "ENV_VAR_NAME",
    "SLUG",
    "STANDARD_LABELS",
    "EndpointConfig",
    "FleetConfig",
    "FormatVersion",
    "Limits",
    "LimitsOverride",
    "ReferenceConfig",
    "Strict",
    "check_http_url",
    "check_slug",
]

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
    """Wire format: `openai-completions`, `openai-chat` or `anthropic-messages` (see
    `canary endpoints flavours`)."""
    model: str
    """Model name sent in each request and recorded as the `model` cohort label."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key. Keys never go in config files."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Cohort labels: pool, hardware, platform, region, route, context, or any key of yours."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra non-secret request headers (they override a flavour's own, e.g.
    `anthropic-version`); the key goes in `api_key_env`, sent as `auth` says."""
    auth: Literal["bearer", "x-api-key", "none"] | None = None
    """How the key from `api_key_env` is sent: `bearer` (`Authorization: Bearer KEY`),
    `x-api-key` (`x-api-key: KEY`) or `none` (never); unset means the flavour's own style."""
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Fields merged into every request body, e.g. `{repetition_penalty: 1.0, min_p: 0.0}` to
    switch off a server's own sampler defaults; never a field canary sets from the probe."""
    drop_params: list[str] = Field(default_factory=list)
    """Request fields never sent to this endpoint, e.g. `[top_k]` for a server that refuses it
    (wire names: `max_tokens`, `temperature`, `top_p`, `top_k`, `seed`, `stop`, ...)."""
    record_headers: list[str] = Field(default_factory=list)
    """Response headers stored with each result and made cohort labels (`x-served-by` becomes
    label `x_served_by`), so which pod/build/hardware answered is one `--by` away."""
    chat_template: str | None = None
    """Overrides the reference's `chat_template` for this endpoint's chat probes."""
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
            if not LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} must be lowercase snake_case")
            if key in ("endpoint", "model"):
                raise ValueError(f"label {key!r} is set by canary from the endpoint itself")
            if key == "system_fingerprint":
                raise ValueError(f"label {key!r} is set by canary from each reply")
        return value

    @field_validator("extra_body")
    @classmethod
    def _extra_body(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_extra_body(value)

    @field_validator("drop_params")
    @classmethod
    def _drop_params(cls, value: list[str]) -> list[str]:
        return check_drop_params(value)

    @field_validator("record_headers")
    @classmethod
    def _record_headers(cls, value: list[str]) -> list[str]:
        return check_record_headers(value)

    @model_validator(mode="after")
    def _auth_and_recorded_headers(self) -> EndpointConfig:
        if self.auth == "none" and self.api_key_env is not None:
            raise ValueError(
                "auth: none never sends a key, yet api_key_env is set; remove one of them"
            )
        check_header_labels(self.record_headers, self.labels)
        return self

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.lower() in ("authorization", "x-api-key", "api-key"):
                raise ValueError(f"header {key!r} would hold a secret; use api_key_env instead")
            check_header_value(key, value[key])
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
    reference: ReferenceConfig | None = None
    """What reference-based checks compare with; none means they are not available."""

    @model_validator(mode="after")
    def _unique_names(self) -> FleetConfig:
        seen: set[str] = set()
        for endpoint in self.endpoints:
            if endpoint.name in seen:
                raise ValueError(f"endpoint name {endpoint.name!r} appears twice; names are unique")
            seen.add(endpoint.name)
        trusted = self.reference.endpoint if self.reference is not None else None
        if trusted is not None and trusted not in seen:
            raise ValueError(
                f"reference endpoint {trusted!r} is not an endpoint of this "
                f"fleet (known: {', '.join(sorted(seen))})"
            )
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
