"""Checks of an endpoint's request shaping and serving metadata, at config load time.

`extra_body`, `drop_params` and `record_headers` reach past canary's own request building and
into its cohorts, so a typo or a clash is refused with the one line that says what to write,
never found later as rows that silently measured something else.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "DROPPABLE_PARAMS",
    "RESERVED_LABELS",
    "check_drop_params",
    "check_extra_body",
    "check_header_labels",
    "check_header_value",
    "check_record_headers",
    "header_label",
]

_FROM_PROBE = "is set by canary from each probe's params; use drop_params to not send it"
#: Body fields canary sets itself, with why `extra_body` may not set them.
CANARY_FIELDS: dict[str, str] = {
    "model": "is set by canary from the endpoint's `model:`",
    "prompt": "is set by canary from each probe",
    "messages": "is set by canary from each probe",
    "system": "is set by canary from each probe's system messages",
    "max_tokens": _FROM_PROBE,
    "temperature": _FROM_PROBE,
    "top_p": _FROM_PROBE,
    "top_k": _FROM_PROBE,
    "seed": _FROM_PROBE,
    "stop": _FROM_PROBE,
    "stop_sequences": _FROM_PROBE,
    "logprobs": "is set by canary from each probe; set `supports_logprobs: false` to never ask",
    "top_logprobs": "is set by canary from each probe; use drop_params to not send it",
    "user": "carries the session id (sticky routing); use drop_params to not send it",
    "metadata": "carries the session id (sticky routing); use drop_params to not send it",
    "n": "would ask for several choices; canary reads exactly one per request",
    "best_of": "would ask for several choices; canary reads exactly one per request",
    "stream": "would stream the reply; canary reads one whole JSON body",
    "stream_options": "would stream the reply; canary reads one whole JSON body",
    "echo": "would put the prompt into the reply's text",
}
#: Request fields `drop_params` may name: optional ones, as sent on the wire by some flavour.
DROPPABLE_PARAMS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "stop",
    "stop_sequences",
    "top_logprobs",
    "user",
    "metadata",
)
#: Label keys canary sets on every result itself; user labels and recorded headers keep off.
RESERVED_LABELS = ("endpoint", "model", "load", "system_fingerprint")

_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")
_HTTP_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
#: Deeper `extra_body` values are refused: json.dumps and servers recurse on them.
_MAX_DEPTH = 16


def check_extra_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` if every key is one canary leaves alone and every value is plain JSON."""
    for key, value in body.items():
        if key in CANARY_FIELDS:
            raise ValueError(f"extra_body key {key!r} {CANARY_FIELDS[key]}")
        problem = _json_problem(value, 0)
        if problem:
            raise ValueError(f"extra_body {key!r}: {problem}; write plain JSON values")
    return dict(body)


def _json_problem(value: Any, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return f"nested deeper than {_MAX_DEPTH} levels"
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, list):
        return next((p for v in value if (p := _json_problem(v, depth + 1))), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "object keys must be strings"
        return next((p for v in value.values() if (p := _json_problem(v, depth + 1))), None)
    return f"{type(value).__name__} value {json.dumps(str(value))} is not JSON"


def check_drop_params(names: Iterable[str]) -> list[str]:
    """`names` if each is an optional field canary may send, without repeats."""
    listed = list(names)
    for name in listed:
        if name == "logprobs":
            raise ValueError(
                "drop_params cannot drop 'logprobs': set `supports_logprobs: false`, so checks "
                "that need logprobs know they have none"
            )
        if name not in DROPPABLE_PARAMS:
            raise ValueError(
                f"drop_params {name!r} is not a field canary sends that can be left out "
                f"(known: {', '.join(DROPPABLE_PARAMS)})"
            )
    if len(set(listed)) != len(listed):
        raise ValueError("drop_params lists a field twice")
    return listed


def check_header_value(name: str, value: str) -> None:
    """Refuse a request header httpx could not send: every request would fail on it."""
    if not _HTTP_TOKEN.match(name):
        raise ValueError(f"header {name!r} is not a header name: write e.g. 'x-tenant'")
    if any(not (c.isprintable() and c.isascii()) for c in value):
        raise ValueError(f"header {name!r}: its value holds control or non-ASCII characters")


def header_label(header: str) -> str:
    """The cohort label a recorded response header becomes: ``x-served-by`` → ``x_served_by``."""
    return header.lower().replace("-", "_")


def check_record_headers(headers: Iterable[str]) -> list[str]:
    """`headers` lowercased, if each names an HTTP header and no two make the same label."""
    seen: dict[str, str] = {}
    for header in headers:
        if not _HEADER_NAME.match(header):
            raise ValueError(
                f"record_headers {header!r} is not a header name: letters, digits and '-', "
                "starting with a letter, at most 32 characters (e.g. 'x-served-by')"
            )
        label = header_label(header)
        if label in RESERVED_LABELS:
            raise ValueError(f"record_headers {header!r} would be label {label!r}, set by canary")
        if label in seen:
            raise ValueError(f"record_headers lists {header!r} and {seen[label]!r}: one label")
        seen[label] = header
    return [h.lower() for h in seen.values()]


def check_header_labels(headers: Iterable[str], labels: Mapping[str, str]) -> None:
    """Refuse a recorded header whose label `labels` already sets: one would hide the other."""
    for header in headers:
        label = header_label(header)
        if label in labels:
            raise ValueError(
                f"record_headers {header!r} would be label {label!r}, which `labels` already "
                "sets; rename one of them"
            )
