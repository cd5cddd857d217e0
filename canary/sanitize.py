"""The two boundaries for hostile text: into the store, and onto a terminal or page.

Everything an endpoint sends (and every id or note a user types) is hostile input. On the way in,
`storable_text` and `storable_json` make a value storable, identically, on SQLite and PostgreSQL:
lone surrogates and NUL become U+FFFD, non-finite floats become null, nesting is bounded, and the
values of configured secret environment variables are scrubbed. On the way out, `printable`
makes text inert on a terminal or in HTML: control characters, escape sequences and bidi
controls are shown as visible escapes (``\\x1b``, ``\\u202e``), never emitted. `markup_safe`
additionally escapes rich markup, for text interpolated into a rich markup string.

This module is on the ground floor: it imports nothing of canary, so every layer can use it.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_SECRET_ENVS",
    "MAX_JSON_DEPTH",
    "SecretScrubFilter",
    "inert_json",
    "markup_safe",
    "one_line",
    "printable",
    "register_secret_envs",
    "scrub_secrets",
    "secret_envs",
    "storable_json",
    "storable_text",
]

#: Deeper JSON is cut (replaced by a marker string): json.dumps and the databases recurse.
MAX_JSON_DEPTH = 64
#: Environment variables whose values are secrets whatever the config says.
DEFAULT_SECRET_ENVS = ("CANARY_CHANGE_TOKEN",)
#: Shorter values are not scrubbed: a one- or two-character "secret" would erase ordinary text.
_MIN_SECRET_LEN = 4
_SCRUBBED = "***"
_CUT = "…(nesting cut)"

# Lone surrogates cannot be encoded as UTF-8; NUL is refused by PostgreSQL text columns.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates, the
# line/paragraph separators, and lone surrogates (which a terminal cannot encode either).
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)
_UNPRINTABLE_LINE = re.compile(_UNPRINTABLE.pattern[:-1] + "\t\n]")

_secret_lock = threading.Lock()
_secret_names: set[str] = set(DEFAULT_SECRET_ENVS)


# --- secrets ---------------------------------------------------------------------------------


def register_secret_envs(names: Iterable[str | None]) -> None:
    """Declare environment variables whose values are secrets (API keys, tokens, webhook URLs).

    Config loaders call this for every `*_env` field they read, so a key a server echoes back
    is scrubbed from what is stored and printed. The values are read at scrub time, so a
    variable exported later is covered too.
    """
    with _secret_lock:
        _secret_names.update(n for n in names if n)


def secret_envs() -> frozenset[str]:
    """The names registered so far (values are never returned)."""
    with _secret_lock:
        return frozenset(_secret_names)


def _secret_values() -> list[str]:
    with _secret_lock:
        names = list(_secret_names)
    values = {os.environ.get(n) or "" for n in names}
    # Longest first, so a secret containing another is scrubbed whole.
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def scrub_secrets(text: str) -> str:
    """`text` with the value of every registered secret environment variable replaced."""
    for value in _secret_values():
        if value in text:
            text = text.replace(value, _SCRUBBED)
    return text


# --- into the store --------------------------------------------------------------------------


def storable_text(value: str | bytes | None, *, limit: int | None = None) -> str | None:
    """`value` as text both databases store unchanged, or None.

    Bytes are decoded as UTF-8 with replacement; lone surrogates and NUL become U+FFFD; secrets
    are scrubbed; `limit` (characters) cuts what a VARCHAR column cannot hold.
    """
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", "replace")
    elif not isinstance(value, str):
        raise TypeError(f"storable_text takes text or bytes, not {type(value).__name__}")
    if _UNSTORABLE.search(value):
        value = _UNSTORABLE.sub("\ufffd", value)
    value = scrub_secrets(value)
    if limit is not None and len(value) > limit:
        value = value[:limit]
    return value


def storable_json(value: Any, *, _depth: int = 0) -> Any:
    """A JSON value both databases store and every reader can load back.

    Strings and keys pass `storable_text`; NaN and ±Infinity become null (JSON has no spelling
    for them); tuples become lists; anything that is not JSON becomes its text; nesting deeper
    than `MAX_JSON_DEPTH` is replaced by a marker string.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return storable_text(value)
    if _depth >= MAX_JSON_DEPTH:
        return _CUT
    if isinstance(value, Mapping):
        return {
            storable_text(k if isinstance(k, str) else str(k)): storable_json(v, _depth=_depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [storable_json(v, _depth=_depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        return storable_text(bytes(value))
    return storable_text(str(value))


# --- onto a terminal or page -----------------------------------------------------------------


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: object) -> str:
    """`value` as text that is inert on a terminal and in HTML (before HTML escaping).

    Newlines and tabs stay; every other control character, escape sequence introducer (ESC,
    CSI), bidi control and lone surrogate is shown as a visible escape such as ``\\x1b`` or
    ``\\u202e``, so on-call sees that the output held one and the terminal never acts on it.
    Secrets are scrubbed.
    """
    text = value if isinstance(value, str) else str(value)
    text = _UNPRINTABLE.sub(_escape_char, text)
    return scrub_secrets(text)


def one_line(value: object) -> str:
    """`printable`, with newlines and tabs escaped too: for ids, labels and table cells."""
    text = value if isinstance(value, str) else str(value)
    text = _UNPRINTABLE_LINE.sub(
        lambda m: {"\n": "\\n", "\t": "\\t"}.get(m.group()) or _escape_char(m), text
    )
    return scrub_secrets(text)


def markup_safe(value: object, *, single_line: bool = False) -> str:
    """`printable` (or `one_line`) with rich markup escaped: safe inside a rich markup string."""
    from rich.markup import escape

    return escape(one_line(value) if single_line else printable(value))


def inert_json(text: str) -> str:
    """JSON text with every character `printable` would escape written as a ``\\uXXXX`` escape.

    A JSON reader gets exactly the same data back, while the text holds no ESC, C1 or bidi
    control and no lone surrogate: `--json` output is valid, writable as UTF-8 and inert on a
    terminal. (json.dumps already escapes C0 controls inside strings; outside strings JSON has
    only spaces, tabs and newlines, so every match lies inside a string.)
    """
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SecretScrubFilter:
    """A `logging` filter that scrubs secrets from every record's message and arguments.

    Install it on a handler (`handler.addFilter(SecretScrubFilter())`): records are rendered
    once, scrubbed, and passed on with no arguments left to re-interpolate.
    """

    def filter(self, record: Any) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = scrub_secrets(message)
        record.args = None
        if record.exc_text:
            record.exc_text = scrub_secrets(record.exc_text)
        return True
