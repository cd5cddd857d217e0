"""Incremental detokenization, as servers stream text: prefix and read offsets over the ids.

Each step decodes a short window of ids twice, `ids[prefix:read]` (text already emitted) and
`ids[prefix:]`; what the second adds is new text, emitted once it no longer ends in U+FFFD (a
character still waiting for its bytes). This is vLLM's `detokenize_incrementally`. With a
byte-level BPE a completion's text needs no prompt context, so the healthy detokenizer starts
from empty offsets and its text is exactly `tokenizer.decode(completion_ids)`.

The `prompt_leak` fault is vLLM#48853's: the window is seeded with the prompt's last tokens (to
finish a character the prompt began), and when the last prompt token is part of a character the
read offset is wrongly set to the prefix offset, so the first text emitted repeats the decoded
prompt tail. A prompt ending on a whole character gets the right offsets and leaks nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    """The text of one sequence, built token by token."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        prompt_ids: list[int] | None = None,
        leak_offset: int | None = None,
    ) -> None:
        """`leak_offset` set: seed the window with that many prompt tokens, with the bug."""
        self._tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0
        self.text = ""
        self.leaked = False
        """Whether the faulty initialisation put prompt text before the completion."""
        if leak_offset is not None and prompt_ids:
            self.ids = list(prompt_ids[-leak_offset:])
            self.read_offset = len(self.ids)
            if REPLACEMENT in self._decode(self.ids[-1:]):
                # The bug: "start reading where the window starts, so the character the prompt
                # began is emitted whole", which also emits the whole prompt tail.
                self.read_offset = self.prefix_offset
                self.leaked = bool(self._decode(self.ids))

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def add(self, token_id: int) -> str:
        """Take the next generated id; return the text it completes (often "", mid-character)."""
        self.ids.append(token_id)
        return self._advance(final=False)

    def flush(self) -> str:
        """The sequence ended: emit what is held back, with U+FFFD for an unfinished character."""
        return self._advance(final=True)

    def _advance(self, final: bool) -> str:
        if self.read_offset >= len(self.ids):
            return ""
        prefix_text = self._decode(self.ids[self.prefix_offset : self.read_offset])
        new_text = self._decode(self.ids[self.prefix_offset :])
        if len(new_text) <= len(prefix_text) and not final:
            return ""
        if new_text.endswith(REPLACEMENT) and not final:
            return ""
        piece = new_text[len(prefix_text) :]
        self.prefix_offset = self.read_offset
        self.read_offset = len(self.ids)
        self.text += piece
        return piece
