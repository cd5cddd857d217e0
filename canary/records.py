"""The record of one probe request: what the runner produces and the store persists.

On the ground floor: endpoints, the runner, the store, detectors and scoring all use these values,
so this module imports nothing of canary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Error kinds a result may carry. `None` means the request succeeded and parsed.
ERROR_KINDS = (
    "timeout",  # no complete response within the timeout
    "connect",  # could not connect
    "disconnected",  # the server closed the connection mid-response
    "http_429",  # rate limited, retries exhausted
    "http_5xx",  # server error, retries exhausted
    "http_4xx",  # client error (not retried): usually a config problem
    "malformed",  # body was not the JSON shape the flavour expects
    "oversized",  # body larger than max_response_bytes
    "transport",  # any other transport failure
)

#: The metric computed from results themselves (an error instead of an answer), not from
#: detector scores: the store counts it from ``error_kind``, so it lives below the store.
ERROR_RATE = "error_rate"


def finite_logprob(value: object) -> float | None:
    """`value` as a finite float, or None when it is missing, not a number, NaN or ±Infinity.

    The one reading of a logprob for every layer (adapters, store, readers, detectors): a value
    that is not a finite number is *missing*, never a number a detector could compare.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def token_key(text: str, raw: bytes | None = None) -> str:
    """The key of a token in `TokenLogprob.top`, comparable across servers and the reference.

    With its bytes known, a token that is whole UTF-8 characters is keyed by that text, and a
    token that is part of a character by byte notation (``<0xE0><0xB8>``), so two servers that
    spell a partial token differently (``""``, ``"\ufffd"``, bytes) agree on its key. Without
    bytes the text is all there is; `ambiguous_token_text` says when it cannot be compared.
    """
    if raw is None:
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{b:02X}>" for b in raw)


def whole_characters(raw: bytes) -> bool:
    """Whether `raw` is whole UTF-8 characters (a token that does not end mid-character)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def ambiguous_token_text(text: str) -> bool:
    """Whether a token's text does not identify it: ``""`` or one holding U+FFFD is what
    servers send for a token that ends mid-character, and many tokens share it."""
    return text == "" or "\ufffd" in text


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated position: the chosen token, its logprob, and the top alternatives."""

    token: str
    logprob: float | None
    """None when the endpoint gave none, or gave one that was not a finite number."""
    top: dict[str, float] = field(default_factory=dict)
    """Alternatives with finite logprobs only: the adapters and the store drop the others.
    Keyed by `token_key`: the text, or byte notation for a token that is part of a character."""
    token_id: int | None = None
    bytes: bytes | None = None
    """The token's raw bytes when known (sent by the server, or the reference's tokenizer): a
    byte-level BPE token may end mid-character, where its text is `""` or `"\ufffd"`."""


#: Most tool calls read from one reply, and longest `arguments` string kept of each.
MAX_TOOL_CALLS = 16
MAX_TOOL_ARGUMENTS = 8192


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call as the endpoint sent it: hostile data, kept as sent and never trusted.

    A field of the wrong type is None and `problem` says what was wrong with the call's shape,
    so a broken call is a value the `tool_calls` detector judges, never an exception.
    """

    id: str | None
    name: str | None
    arguments: str | None
    """The arguments string as sent (JSON text, if the endpoint is right), at most
    `MAX_TOOL_ARGUMENTS` characters."""
    type: str | None = "function"
    problem: str | None = None
    """What was wrong with the call's shape (not an object, arguments not a string…)."""


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """Everything canary knows about one probe request. Immutable once the request ends."""

    endpoint: str
    probe_id: str
    repeat_index: int
    session_id: str
    labels: dict[str, str]
    """Cohort labels of the endpoint at send time, including `endpoint`, `model` and `load`."""
    request: dict[str, Any]
    """The JSON body sent (never headers, so never secrets)."""
    started_at: datetime
    latency_ms: float
    attempts: int
    status_code: int | None = None
    error_kind: str | None = None
    error_detail: str | None = None
    served_by: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    """Headers that may name the backend (`served_by_headers`) and the `record_headers`."""
    system_fingerprint: str | None = None
    """The backend configuration the reply names (OpenAI's `system_fingerprint`), if any."""
    output_text: str | None = None
    finish_reason: str | None = None
    tokens: list[TokenLogprob] | None = None
    """Per-position tokens and logprobs when the endpoint returned them."""
    usage: dict[str, int] | None = None
    dropped_logprobs: int = 0
    """Logprobs the endpoint sent that were not finite numbers (NaN, ±Infinity, not a number):
    left out of `tokens`, where such a chosen-token logprob is None (missing)."""
    tool_calls: tuple[ToolCall, ...] | None = None
    """The calls of a request that offered tools (empty: it offered them, none came); None
    when no tools were offered (the wire format cannot, or the probe has none)."""

    @property
    def ok(self) -> bool:
        return self.error_kind is None


@dataclass(frozen=True)
class ResultFilter:
    """Which stored results a side of a comparison covers."""

    run_ids: tuple[int, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    suites: tuple[str, ...] = ()
    """Suite names; empty means every suite."""
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> str:
        parts = []
        if self.run_ids:
            parts.append("runs " + ",".join(map(str, self.run_ids)))
        if self.suites:
            parts.append("suite " + ",".join(self.suites))
        if self.labels:
            parts.append(",".join(f"{k}={v}" for k, v in sorted(self.labels.items())))
        if self.since or self.until:
            start = self.since.isoformat(timespec="seconds") if self.since else "…"
            end = self.until.isoformat(timespec="seconds") if self.until else "now"
            parts.append(f"{start} .. {end}")
        return "; ".join(parts) or "all results"
