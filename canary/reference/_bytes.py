"""The raw bytes of a reference token, so it compares with an endpoint's by content, not text.

A byte-level BPE token may end in the middle of a UTF-8 character: decoded alone it is `"\ufffd"`
and many such tokens share that text. Its bytes are exact: byte-level BPE vocabularies spell
bytes with the GPT-2 byte↔unicode map, SentencePiece byte fallback with `<0xNN>` pieces.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@functools.lru_cache(maxsize=1)
def unicode_to_byte() -> dict[str, int]:
    """The inverse of GPT-2's byte↔unicode map (how byte-level BPE vocabularies spell bytes):
    printable stand-in character → byte."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def _scheme(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """`byte-level`, `sentencepiece` or None (unknown: no bytes), from the tokenizer's decoder."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = repr(getattr(backend, "decoder", None))
    if "ByteLevel" in decoder:
        return "byte-level"
    if "ByteFallback" in decoder or "Metaspace" in decoder or hasattr(tokenizer, "sp_model"):
        return "sentencepiece"
    return None


class TokenBytes:
    """Token id → bytes for one tokenizer (None for special tokens and unknown schemes)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._scheme = _scheme(tokenizer)
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
        if not isinstance(piece, str):
            return None
        if self._scheme == "byte-level":
            table = unicode_to_byte()
            if all(ch in table for ch in piece):
                return bytes(table[ch] for ch in piece)
            return None
        if self._scheme != "sentencepiece":
            return None
        if match := _BYTE_PIECE.match(piece):
            return bytes([int(match.group(1), 16)])
        return piece.replace("\u2581", " ").encode("utf-8")  # ▁ stands for a space
