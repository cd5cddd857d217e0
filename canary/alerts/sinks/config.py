"""Sink config: one strict model per sink type. `canary.alerts.sinks.registry.SinkConfig`
picks the model by the `type:` field, so a plugin sink is configured like a built-in one.

These models know nothing of the sinks themselves: `base` and `registry` import them, never
the other way round.

Secrets (webhook URLs that embed a token, auth headers) never appear in config files, the
database, logs or error messages: config names the environment variables that hold them, and
`HttpSink` reads those at send time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from canary.config.fleet import ENV_VAR_NAME, Strict, check_slug

_HEADER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


class RetryPolicy(Strict):
    """How long and how often a failed delivery is tried again."""

    initial_backoff_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """Delay after the first failed attempt; it doubles after each further failure (jittered)."""
    max_backoff_s: Annotated[float, Field(gt=0, le=86400)] = 600.0
    """Longest delay between two attempts."""
    give_up_after_s: Annotated[float, Field(gt=0)] = 86400.0
    """A notification still undelivered this long after it was created is expired and logged."""

    @model_validator(mode="after")
    def _ordered(self) -> RetryPolicy:
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("max_backoff_s must be at least initial_backoff_s")
        return self


class SinkConfigBase(Strict):
    """What every sink has: a type, a unique name, and a retry policy."""

    type: str
    """Which sink: stdout, webhook, alertmanager, slack, or a plugin's type."""
    name: str
    """Unique name of this sink; deliveries are stored under it. Defaults to the type."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    """Backoff and give-up time for failed deliveries."""

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_type(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "name" not in data:
            return {**data, "name": data.get("type", cls.model_fields["type"].default)}
        return data

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        return check_slug(value, "ops-slack")


class StdoutSinkConfig(SinkConfigBase):
    """Print one line per alert and log it under the ``canary.alerts`` logger."""

    type: Literal["stdout"] = "stdout"
    """Always ``stdout``."""


class HttpSinkConfig(SinkConfigBase):
    """A sink that POSTs JSON to a receiver; the URL is given inline or through a variable."""

    url: str | None = None
    """Receiver URL, when it is no secret; otherwise use `url_env`."""
    url_env: str | None = None
    """Name of the environment variable holding the receiver URL (read at send time)."""
    headers_env: dict[str, str] = Field(default_factory=dict)
    """Request headers whose values come from environment variables: header → variable name."""
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """Timeout of each phase of a request (connect, write, read), in seconds."""

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. 'http://am:9093'")
        if urlsplit(value).password is not None:
            raise ValueError("holds a password; put the URL in an environment variable (url_env)")
        return value.rstrip("/")

    @field_validator("url_env")
    @classmethod
    def _url_env_is_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_VAR_NAME.match(value):
            raise ValueError("must be the NAME of an environment variable, e.g. 'ALERT_URL'")
        return value

    @field_validator("headers_env")
    @classmethod
    def _headers_env(cls, value: dict[str, str]) -> dict[str, str]:
        for header, var in value.items():
            if not _HEADER.match(header):
                raise ValueError(f"{header!r} is not an HTTP header name")
            if not ENV_VAR_NAME.match(var):
                raise ValueError(
                    f"{header}: {var!r} must be the NAME of an environment variable, not a value"
                )
        return value

    @model_validator(mode="after")
    def _one_url(self) -> HttpSinkConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of 'url' and 'url_env'")
        return self


class WebhookSinkConfig(HttpSinkConfig):
    """POST each notification payload, unchanged, as JSON to a generic webhook."""

    type: Literal["webhook"] = "webhook"
    """Always ``webhook``."""


class AlertmanagerSinkConfig(HttpSinkConfig):
    """Send alerts to Prometheus Alertmanager's v2 API (``POST {url}/api/v2/alerts``)."""

    type: Literal["alertmanager"] = "alertmanager"
    """Always ``alertmanager``."""
    severity: str = "warning"
    """Value of the ``severity`` label on every alert (for Alertmanager routing)."""
    generator_url: str | None = None
    """Link sent as each alert's generatorURL; ``{alert_id}`` and ``{fingerprint}`` are replaced."""
    firing_ttl_s: Annotated[float, Field(gt=0)] = 7 * 86400.0
    """A firing alert is sent with ``endsAt`` this far ahead, so Alertmanager does not resolve
    it on its own after ``resolve_timeout`` (canary sends the resolve when it resolves)."""


class SlackSinkConfig(HttpSinkConfig):
    """Post to a Slack incoming webhook; its URL is a secret, so only `url_env` is accepted."""

    type: Literal["slack"] = "slack"
    """Always ``slack``."""
    excerpt_chars: Annotated[int, Field(ge=20, le=1000)] = 200
    """Longest model-output excerpt shown per sample; longer ones are cut with '…'."""

    @model_validator(mode="after")
    def _url_is_secret(self) -> SlackSinkConfig:
        if self.url is not None:
            raise ValueError(
                "a Slack webhook URL is a secret; export it and name the variable in 'url_env'"
            )
        return self


def validate_sink_names(configs: Sequence[SinkConfigBase]) -> None:
    """Raise `ValueError` if two sinks share a name (call it from the daemon config's validator).

    Deliveries are stored per sink name, so two sinks with one name would share deliveries.
    """
    seen: set[str] = set()
    for config in configs:
        if config.name in seen:
            raise ValueError(
                f"sink name {config.name!r} appears twice; give each sink of one type a 'name'"
            )
        seen.add(config.name)
