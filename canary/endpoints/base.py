"""The endpoint client: transport, limits and failure classification, shared by every flavour.

`EndpointClient` owns everything but the wire format — the httpx client, timeouts, retries with
backoff, bounded concurrency and the shared rate limiter — and turns every outcome of a request
into a `ResultRecord`. A flavour subclass supplies only `path`, `build_request` and
`parse_response` (see `canary.endpoints.openai` for two, and its docstring for a new one).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from canary.config.fleet import EndpointConfig, Limits
from canary.endpoints.ratelimit import ConcurrencyGate, TokenBucket, get_gate, get_limiter
from canary.endpoints.serving import kept_headers, serving_labels
from canary.endpoints.shaping import auth_headers, merged_headers, shaped_body
from canary.errors import ConfigError
from canary.probes.model import Probe
from canary.records import ResultRecord, TokenLogprob, ToolCall
from canary.registry import Registry
from canary.sanitize import register_secret_envs, scrub_secrets

__all__ = [
    "EndpointClient",
    "MalformedResponse",
    "ParsedOutput",
    "flavours",
    "make_client",
]

logger = logging.getLogger(__name__)

#: Longest error_detail stored with a record.
MAX_DETAIL = 500
#: Bytes of an HTTP error body quoted in error_detail.
_ERROR_BODY_QUOTE = 300
#: Failures worth another attempt: transport trouble, rate limiting and server errors. Other 4xx,
#: malformed and oversized bodies would fail the same way again.
_RETRYABLE = frozenset({"timeout", "connect", "disconnected", "transport", "http_429", "http_5xx"})


class MalformedResponse(Exception):
    """Raised by `parse_response` when the body lacks what the flavour needs."""


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """What a flavour extracts from a successful response body."""

    text: str
    finish_reason: str | None = None
    tokens: list[TokenLogprob] | None = None
    usage: dict[str, int] | None = None
    dropped_logprobs: int = 0
    """Logprobs the body held that were not finite numbers, so were left out (see `openai`)."""
    system_fingerprint: str | None = None
    """The backend configuration the reply names, a cohort label of its result (`serving`)."""
    tool_calls: tuple[ToolCall, ...] | None = None
    """The reply's tool calls, as sent (see `canary.endpoints.openai`); None when it had none."""


@dataclass(slots=True)
class _Attempt:
    """The outcome of one HTTP attempt, before parsing."""

    status_code: int | None = None
    headers: httpx.Headers | None = None
    body: bytes | None = None
    error_kind: str | None = None
    error_detail: str | None = None
    retry_after: float | None = None
    final: bool = False
    """Retrying cannot help, whatever the kind says (e.g. a redirect)."""

    @property
    def retryable(self) -> bool:
        return not self.final and self.error_kind in _RETRYABLE


class EndpointClient:
    """Sends probes to one endpoint and records every outcome; never raises per request.

    Subclasses set `path` and implement `build_request` and `parse_response`. Use as an async
    context manager, or call `aclose()`, so the connection pool is released.
    """

    #: Path appended to the endpoint's base_url, e.g. "/chat/completions".
    path: ClassVar[str] = ""
    #: How the API key is sent when the endpoint's `auth` is unset (`bearer`, `x-api-key`).
    default_auth: ClassVar[str] = "bearer"
    #: Headers the wire format needs; the endpoint's `headers` override them.
    default_headers: ClassVar[dict[str, str]] = {}
    #: Whether the wire format can return logprobs at all; if not, they are never asked.
    logprobs_capable: ClassVar[bool] = True

    def __init__(
        self,
        endpoint: EndpointConfig,
        limits: Limits,
        *,
        semaphore: asyncio.Semaphore | ConcurrencyGate | None = None,
        limiter: TokenBucket | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`semaphore` bounds requests in flight (default: the process-wide gate of this
        endpoint name, of `limits.concurrency`, shared by overlapping rounds); `limiter`
        overrides the process-wide one for this endpoint name; `transport` is passed to httpx
        (e.g. a proxy or a custom TLS setup)."""
        if endpoint.api_key_env is not None and endpoint.api_key_env not in os.environ:
            raise ConfigError(
                f"endpoint {endpoint.name}: environment variable {endpoint.api_key_env} is not set;"
                " export it or remove api_key_env"
            )
        # A server that echoes the key back (in its text, a header, an error body) must not get
        # it stored or printed: every boundary scrubs the values of registered variables.
        register_secret_envs([endpoint.api_key_env])
        self.endpoint = endpoint
        self.limits = limits
        self._semaphore = (
            semaphore if semaphore is not None else get_gate(endpoint.name, limits.concurrency)
        )
        self._limiter = (
            limiter if limiter is not None else get_limiter(endpoint.name, limits.rate_limit_rps)
        )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(limits.timeout_s, connect=limits.connect_timeout_s),
            # The semaphore bounds requests in flight; an httpx pool bound as well would turn a
            # larger shared semaphore into PoolTimeouts.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=limits.concurrency),
            headers=merged_headers(
                {"User-Agent": "canary", **self.default_headers}, endpoint.headers
            ),
            transport=transport,
        )

    # -- what a flavour overrides -------------------------------------------------------------

    def build_request(self, probe: Probe, session_id: str) -> dict[str, Any]:
        """The JSON body for `probe`. `probe.params.logprobs` is already off when unsupported."""
        raise NotImplementedError

    def parse_response(self, body: dict[str, Any]) -> ParsedOutput:
        """Extract the output from a decoded JSON body; raise `MalformedResponse` if it can't."""
        raise NotImplementedError

    def error_message(self, body: bytes) -> str | None:
        """What an HTTP error body says, in the wire format's error shape; None to quote it."""
        return None

    # -- transport ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.endpoint.base_url + self.path

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> EndpointClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(
        self, probe: Probe, *, session_id: str, repeat_index: int = 0, labels: dict[str, str]
    ) -> ResultRecord:
        """Send `probe` (retrying as the limits allow) and return its record, success or not."""
        can_logprob = self.endpoint.supports_logprobs and self.logprobs_capable
        if not can_logprob and probe.params.logprobs:
            params = probe.params.model_copy(update={"logprobs": False, "top_logprobs": None})
            probe = probe.model_copy(update={"params": params})
        body = shaped_body(self.endpoint, self.build_request(probe, session_id))
        attempts = 0
        # The slot is held through backoff sleeps too: a struggling endpoint sees no more than
        # `concurrency` requests from us, including those waiting to retry.
        async with self._semaphore:
            while True:
                attempts += 1
                if self._limiter is not None:
                    await self._limiter.acquire()
                if attempts == 1:  # our own queueing is not the endpoint's latency
                    started_at = datetime.now(UTC)
                    start = time.perf_counter()
                outcome = await self._attempt(body, session_id)
                if not outcome.retryable or attempts > self.limits.max_retries:
                    break
                delay = self._backoff(attempts, outcome.retry_after)
                logger.debug(
                    "endpoint %s: %s on attempt %d, retrying in %.2fs",
                    self.endpoint.name,
                    outcome.error_kind,
                    attempts,
                    delay,
                )
                await asyncio.sleep(delay)
            latency_ms = (time.perf_counter() - start) * 1000.0

        parsed: ParsedOutput | None = None
        if outcome.error_kind is None:
            parsed, outcome.error_kind, outcome.error_detail = self._parse(outcome.body or b"")
        headers = kept_headers(self.endpoint, outcome.headers)
        served_by = next(
            (headers[h.lower()] for h in self.endpoint.served_by_headers if h.lower() in headers),
            None,
        )
        fingerprint = parsed.system_fingerprint if parsed else None
        tool_calls = parsed.tool_calls if parsed else None
        if parsed is not None and tool_calls is None and "tools" in body:
            tool_calls = ()  # tools were offered and none came: a fact the detector judges
        return ResultRecord(
            endpoint=self.endpoint.name,
            probe_id=probe.id,
            repeat_index=repeat_index,
            session_id=session_id,
            labels={**labels, **serving_labels(self.endpoint, headers, fingerprint)},
            request=body,
            started_at=started_at,
            latency_ms=latency_ms,
            attempts=attempts,
            status_code=outcome.status_code,
            error_kind=outcome.error_kind,
            error_detail=self._clean_detail(outcome.error_detail),
            served_by=served_by,
            response_headers=headers,
            system_fingerprint=fingerprint,
            output_text=parsed.text if parsed else None,
            finish_reason=parsed.finish_reason if parsed else None,
            tokens=parsed.tokens if parsed else None,
            usage=parsed.usage if parsed else None,
            dropped_logprobs=parsed.dropped_logprobs if parsed else 0,
            tool_calls=tool_calls,
        )

    async def _attempt(self, body: dict[str, Any], session_id: str) -> _Attempt:
        headers = {
            "X-Session-Id": session_id,
            **auth_headers(self.endpoint.auth or self.default_auth, self._api_key()),
        }
        result = _Attempt()
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                async with self._client.stream(
                    "POST", self.url, json=body, headers=headers
                ) as response:
                    result.status_code = response.status_code
                    result.headers = response.headers
                    await self._read(response, result)
        except httpx.ConnectTimeout:
            result.error_kind = "connect"
            result.error_detail = (
                f"could not connect to {self.url} within {self.limits.connect_timeout_s:g} s"
            )
        except (TimeoutError, httpx.TimeoutException):
            result.error_kind = "timeout"
            result.error_detail = f"no complete response within {self.limits.timeout_s:g} s"
        except httpx.ConnectError as exc:
            result.error_kind = "connect"
            result.error_detail = f"could not connect to {self.url}: {_describe(exc)}"
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            result.error_kind = "disconnected"
            result.error_detail = f"server closed the connection: {_describe(exc)}"
        except Exception as exc:  # the contract is a record for every failure, never a raise
            result.error_kind = "transport"
            result.error_detail = _describe(exc)
        return result

    async def _read(self, response: httpx.Response, result: _Attempt) -> None:
        """Read the body into `result`, stopping past `max_response_bytes`; classify status."""
        limit = self.limits.max_response_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            result.error_kind = "oversized"
            result.error_detail = f"Content-Length {declared} exceeds max_response_bytes {limit}"
            return
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                result.error_kind = "oversized"
                result.error_detail = f"body exceeds max_response_bytes {limit}"
                return
            chunks.append(chunk)
        result.body = b"".join(chunks)
        status = response.status_code
        if 200 <= status < 300:
            return
        quoted = self._error_message(result.body)
        result.error_detail = f"HTTP {status}: {quoted}"
        if status == 429:
            result.error_kind = "http_429"
            result.retry_after = _retry_after(response.headers.get("retry-after"))
        elif status >= 500:
            result.error_kind = "http_5xx"
        elif status >= 400:
            result.error_kind = "http_4xx"
        else:
            result.error_kind = "transport"
            result.error_detail = (
                f"unexpected HTTP {status} (redirects are not followed; check base_url)"
            )
            result.final = True

    def _error_message(self, body: bytes) -> str:
        try:
            said = self.error_message(body)
        except Exception:  # a hostile error body must not cost the error row its detail
            said = None
        return said or body[:_ERROR_BODY_QUOTE].decode("utf-8", "replace")

    def _parse(self, raw: bytes) -> tuple[ParsedOutput | None, str | None, str | None]:
        try:
            decoded = json.loads(raw)
        except RecursionError:  # json recurses per nesting level
            return None, "malformed", "body is JSON nested too deeply to read"
        except ValueError as exc:
            return None, "malformed", f"body is not JSON: {exc}"
        if not isinstance(decoded, dict):
            return None, "malformed", f"body is JSON {type(decoded).__name__}, not an object"
        try:
            return self.parse_response(decoded), None, None
        except MalformedResponse as exc:
            return None, "malformed", str(exc)
        except Exception as exc:
            # A flavour that indexes without checking (or recurses into a deep body) still
            # yields a row, not a crash: the contract is a record per request, never a raise.
            return None, "malformed", f"unexpected response shape: {_describe(exc)}"

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a server's Retry-After wins, capped."""
        cap = self.limits.backoff_max_s
        if retry_after is not None:
            return min(retry_after, cap)
        return random.uniform(0, min(cap, self.limits.backoff_s * 2 ** (attempt - 1)))

    def _api_key(self) -> str | None:
        if self.endpoint.api_key_env is None:
            return None
        return os.environ.get(self.endpoint.api_key_env) or None

    def _clean_detail(self, detail: str | None) -> str | None:
        """One line, at most MAX_DETAIL characters, with the API key scrubbed."""
        if detail is None:
            return None
        key = self._api_key()
        if key:
            detail = detail.replace(key, "***")
        detail = " ".join(scrub_secrets(detail).split())
        return detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 1] + "…"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


#: Wire formats by name; third parties register more via the `canary.endpoints` entry points.
flavours = Registry[type[EndpointClient]]("endpoint flavour", "canary.endpoints")


def make_client(endpoint: EndpointConfig, limits: Limits, **kw: Any) -> EndpointClient:
    """A client of the flavour `endpoint.flavour`; `kw` goes to `EndpointClient.__init__`."""
    return flavours.get(endpoint.flavour)(endpoint, limits, **kw)
