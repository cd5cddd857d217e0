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
    """The inverse of GPT-2's byte↔unicode map (how byte-level BPE vocabularies spell bytes):
    printable stand-in character → byte."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


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
