"""A result record as a `results` row: the store's one boundary for text from endpoints.

Every string an endpoint sent (output text, tokens, top-logprob keys, finish_reason, headers,
served_by, system_fingerprint, error details, usage) and the request echo pass
`canary.sanitize.storable_text` or `storable_json` here, once, so both databases store the
same thing and never refuse it: lone surrogates and NUL become U+FFFD, secrets are scrubbed,
nesting is bounded. Logprobs are stored finite or null (missing), and an alternative without
a finite logprob is not stored at all. A value of the wrong type is refused with `TypeError`,
naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from canary.records import ResultRecord, TokenLogprob, ToolCall, finite_logprob
from canary.sanitize import storable_json, storable_text

__all__ = ["bytes_from_json", "bytes_to_json", "result_row"]

#: Longest stored token bytes; longer (hostile) values read back as missing.
_MAX_TOKEN_BYTES = 256


def bytes_to_json(value: bytes | None, name: str) -> str | None:
    """A token's raw bytes as stored: lowercase hex (JSON has no bytes), or None."""
    if value is None:
        return None
    if not isinstance(value, bytes):
        raise TypeError(f"{name} is {type(value).__name__}, not bytes")
    return value.hex()


def bytes_from_json(raw: Any) -> bytes | None:
    """Stored token bytes back; absent (rows written before bytes were kept) or unreadable is
    None (missing), never an error: the token's text is still there."""
    if not isinstance(raw, str) or len(raw) > 2 * _MAX_TOKEN_BYTES:
        return None
    try:
        return bytes.fromhex(raw)
    except ValueError:
        return None


def _text(value: str | None, name: str, limit: int | None = None) -> str | None:
    """A text column's value through `storable_text`; a value that is not text is refused."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} is {type(value).__name__}, not text")
    return storable_text(value, limit=limit)


def _storable_strings(values: list[str]) -> list[str]:
    """`storable_text` of each value, in one call over all of them when none needs a change.

    A reply holds thousands of tokens and alternatives; when their joined text is storable
    unchanged, so is each of them (no unstorable character, no secret in any), and the check
    costs one call instead of one per string.
    """
    joined = "\n".join(values)
    if storable_text(joined) == joined:
        return values
    return [str(storable_text(v)) for v in values]


def _tokens_json(tokens: Sequence[TokenLogprob]) -> list[dict[str, Any]]:
    """The stored token list: storable text, finite logprobs, alternatives without a value gone.

    A non-finite logprob is stored as null (missing), and an alternative without a finite
    logprob is left out of `top`, so a reader never finds a null where it expects a number.
    """
    strings: list[str] = []
    tops: list[dict[str, float]] = []
    for i, t in enumerate(tokens):
        if not isinstance(t.token, str):
            raise TypeError(f"tokens[{i}].token is {type(t.token).__name__}, not text")
        top = t.top or {}
        if not all(type(v) is float and math.isfinite(v) for v in top.values()) or not all(
            isinstance(k, str) for k in top
        ):
            top = {
                k: value
                for k, v in top.items()
                if isinstance(k, str) and (value := finite_logprob(v)) is not None
            }
        strings.append(t.token)
        strings.extend(top)
        tops.append(top)
    clean = _storable_strings(strings)
    at = 0
    stored: list[dict[str, Any]] = []
    for t, top in zip(tokens, tops, strict=True):
        token, at, n = clean[at], at + 1, len(top)
        if clean is not strings:  # something was replaced: take the storable keys
            top = dict(zip(clean[at : at + n], top.values(), strict=True))
        at += n
        token_id = t.token_id
        position = {
            "token": token,
            "logprob": finite_logprob(t.logprob),
            "top": dict(top),
            "token_id": token_id
            if isinstance(token_id, int) and not isinstance(token_id, bool)
            else None,
        }
        raw = bytes_to_json(t.bytes, f"tokens[{len(stored)}].bytes")
        if raw is not None:  # absent rather than null: rows stay as they were without bytes
            position["bytes"] = raw
        stored.append(position)
    return stored


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    """A tool call as stored (in `response`), every string through the text boundary."""
    return {
        "id": _text(call.id, "tool_calls.id", 255),
        "type": _text(call.type, "tool_calls.type", 64),
        "name": _text(call.name, "tool_calls.name", 255),
        "arguments": _text(call.arguments, "tool_calls.arguments"),
        "problem": _text(call.problem, "tool_calls.problem", 500),
    }


def result_row(
    r: ResultRecord, run_id: int, probe_id: int, endpoint_id: int, cohort_id: int
) -> dict[str, Any]:
    """The row of one record. The store's boundary for hostile text: every string that came
    from an endpoint passes `storable_text`/`storable_json` here, once."""
    response: dict[str, Any] = {
        "tokens": None if r.tokens is None else _tokens_json(r.tokens),
        "usage": storable_json(r.usage),
        "headers": storable_json(dict(r.response_headers)),
    }
    if r.dropped_logprobs:
        response["dropped_logprobs"] = r.dropped_logprobs
    if r.system_fingerprint is not None:
        response["system_fingerprint"] = _text(r.system_fingerprint, "system_fingerprint", 255)
    if r.tool_calls is not None:  # absent rather than null: rows without tools stay as they were
        response["tool_calls"] = storable_json([_tool_call_json(c) for c in r.tool_calls])
    return {
        "run_id": run_id,
        "probe_id": probe_id,
        "endpoint_id": endpoint_id,
        "cohort_id": cohort_id,
        "session_id": r.session_id,
        "repeat_index": r.repeat_index,
        "started_at": r.started_at,
        "latency_ms": r.latency_ms,
        "attempts": r.attempts,
        "status_code": r.status_code,
        "error_kind": r.error_kind,
        "error_detail": _text(r.error_detail, "error_detail"),
        "served_by": _text(r.served_by, "served_by", 255),
        "request": storable_json(r.request),
        "output_text": _text(r.output_text, "output_text"),
        "finish_reason": _text(r.finish_reason, "finish_reason", 32),
        "response": response,
    }
