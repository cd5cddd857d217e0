"""Rendering helpers shared by commands: rich consoles, JSON output, durations.

Both consoles have emoji codes off: a selector such as ``run:abc:`` or a change note holding
``:fire:`` is printed as typed. What came from an endpoint or a user still goes through
`canary.sanitize` (`printable`, `one_line`, `markup_safe`) before it reaches them.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime
from typing import Any

from rich.console import Console

from canary.sanitize import inert_json, scrub_secrets

console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain print: never rich markup or wrapping).

    The JSON is data, kept exact, but always valid, writable and inert on a terminal: NaN and
    ±Infinity become null; control, bidi and lone surrogate characters are written as JSON
    ``\\uXXXX`` escapes (`inert_json`); the values of registered secret environment variables
    are scrubbed.
    """
    sys.stdout.write(json_text(data) + "\n")


def json_text(data: Any) -> str:
    """``data`` as indented JSON text that any JSON reader accepts (see `print_json`)."""
    clean = _clean(json.loads(json.dumps(data, default=_default, ensure_ascii=False)))
    return inert_json(json.dumps(clean, indent=2, ensure_ascii=False, allow_nan=False))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return scrub_secrets(value)
    if isinstance(value, dict):
        return {scrub_secrets(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def fmt_time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")
