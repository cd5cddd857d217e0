"""The transport every HTTP sink shares: secrets from the environment, POST, status handling.

A flavour (webhook, alertmanager, slack) only renders bodies. Secrets are read at each send,
so a rotated token is picked up without a restart, and scrubbed from every error message.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from canary.alerts.sinks.base import DeliveryError, Payload, Sink
from canary.alerts.sinks.config import HttpSinkConfig
from canary.alerts.sinks.text import one_line
from canary.errors import ConfigError
from canary.store.engine import dumps_json

H = TypeVar("H", bound=HttpSinkConfig)

#: Characters of a receiver's error body quoted in the stored error.
_BODY_QUOTE = 200
#: Statuses that say "try again later" rather than "your request is wrong".
_TRANSIENT_4XX = frozenset({408, 429})


class _RedactSecrets(logging.Filter):
    """Replaces secrets in records of the ``httpx`` logger, which logs every URL at INFO."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secrets: list[str]) -> None:
        with self._lock:
            merged = set(self._secrets).union(secrets)
            self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if secrets:
            message = record.getMessage()
            if any(secret in message for secret in secrets):
                record.msg, record.args = _scrub(message, list(secrets)), None
        return True


_httpx_redactor = _RedactSecrets()
logging.getLogger("httpx").addFilter(_httpx_redactor)


class HttpSink(Sink[H]):
    """POSTs each rendered (path, body) pair as JSON to the configured URL + path."""

    @property
    def lease_s(self) -> float:
        # httpx's timeout bounds each phase (connect, write, read), not the whole request.
        return 3 * self.config.timeout_s + 30.0

    def check(self) -> None:
        self._target()

    def send(self, payload: Payload) -> None:
        base, headers = self._target()
        secrets = self._secrets(base, headers)
        _httpx_redactor.add(secrets)
        with httpx.Client(timeout=self.config.timeout_s, follow_redirects=False) as client:
            for path, body in self.render(payload):
                try:
                    response = client.post(base + path, content=dumps_json(body), headers=headers)
                except httpx.HTTPError as exc:
                    detail = str(exc) or "no detail"
                    raise DeliveryError(
                        _scrub(f"{type(exc).__name__} on POST {path or '/'}: {detail}", secrets)
                    ) from None
                if not response.is_success:
                    raise _status_error(response, path, secrets)

    def _target(self) -> tuple[str, dict[str, str]]:
        """The URL and headers to send with, secrets filled in from the environment."""
        if self.config.url is not None:
            base = self.config.url
        else:
            base = self._env(str(self.config.url_env), "url_env").rstrip("/")
        headers = {"Content-Type": "application/json", "User-Agent": "canary"}
        for header, var in self.config.headers_env.items():
            headers[header] = self._env(var, f"headers_env.{header}")
        return base, headers

    def _secrets(self, base: str, headers: dict[str, str]) -> list[str]:
        """What to scrub from errors: env-held URLs (a receiver may echo their path, which
        holds the token) and header values (and their words: ``Bearer <token>``)."""
        secrets = [headers[h] for h in self.config.headers_env]
        secrets += [word for value in secrets for word in value.split()]
        if self.config.url_env is not None:
            parts = urlsplit(base)
            secrets += [base, parts.path, parts.query]
        # Longest first, so a token inside a longer secret is not left half-replaced.
        return sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def _env(self, var: str, key: str) -> str:
        value = os.environ.get(var, "").strip()
        if not value:
            raise ConfigError(
                f"sink {self.name}: environment variable {var} (named by {key}) is not set;"
                " export it in the daemon's environment"
            )
        return value


def _status_error(response: httpx.Response, path: str, secrets: list[str]) -> DeliveryError:
    code = response.status_code
    permanent = 400 <= code < 500 and code not in _TRANSIENT_4XX
    # Scrub before cutting: a cut through a secret would leave a piece of it unmatched.
    body = (
        one_line(_scrub(response.text[:10_000], secrets), _BODY_QUOTE) if response.content else ""
    )
    hint = "; check the sink config" if permanent else ""
    message = f"HTTP {code} from POST {path or '/'}{': ' + body if body else ''}{hint}"
    return DeliveryError(_scrub(message, secrets), permanent=permanent)


def _scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced by ``***``, on one line and cut to a stored length."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return one_line(text)
