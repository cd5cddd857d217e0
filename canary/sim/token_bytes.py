"""The raw bytes of a token of the simulated fleet's byte-level BPE tokenizer.

The pools serialise a token that ends inside a UTF-8 character the way their real counterparts
do (see `TokenEncoding`), and for that they need its bytes, not its decoded text (U+FFFD).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@functools.lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """The inverse of GPT-2's `bytes_to_unicode`: printable stand-in character → byte."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


class TokenBytes:
    """Token id → bytes; None for special tokens (they have no bytes in the output text)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._cache: dict[int, bytes | None] = {}

    def __call__(self, token_id: int) -> bytes | None:
        if token_id not in self._cache:
            self._cache[token_id] = self._compute(token_id)
        return self._cache[token_id]

    def _compute(self, token_id: int) -> bytes | None:
        if token_id in self._special:
            return None
        piece = self._tokenizer.convert_ids_to_tokens(token_id)
        table = _unicode_to_byte()
        if not isinstance(piece, str) or any(c not in table for c in piece):
            return None
        return bytes(table[c] for c in piece)
