"""Output corruption: a runtime "optimisation" that sometimes boosts tokens that make no sense.

With probability `p` per decoding step and sequence, a few target tokens get a logit above the
row's maximum, so greedy decoding picks one and sampling almost surely does. Targets are found in
the real vocabulary: Thai/Han tokens (the "สวัสดี in an English answer" incident) or tokens made
only of brackets, quotes and colons (syntax errors in code).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import regex
import torch

if TYPE_CHECKING:
    from canary.sim.fleetconfig import CorruptLogits

RARE_SCRIPT = regex.compile(r"[\p{Thai}\p{Han}]")
SYNTAX_BREAKING = regex.compile(r"^\s*[()\[\]{}\"'`:;]+\s*$")


def target_token_ids(token_strings: list[str]) -> dict[str, list[int]]:
    """Token ids per target kind, from each id's decoded string (`rare_script`, `syntax`)."""
    rare = [i for i, s in enumerate(token_strings) if RARE_SCRIPT.search(s)]
    syntax = [i for i, s in enumerate(token_strings) if SYNTAX_BREAKING.match(s)]
    return {"rare_script": rare, "syntax": syntax, "both": sorted({*rare, *syntax})}


class LogitCorruptor:
    """Applies one `CorruptLogits` setting to batches of logits, with its own random stream."""

    def __init__(self, settings: CorruptLogits, targets: dict[str, list[int]]) -> None:
        self.settings = settings
        self.candidates = targets[settings.targets]
        if not self.candidates:
            raise ValueError(f"the vocabulary has no {settings.targets} tokens to boost")
        self._rng = random.Random(settings.seed)

    def apply(self, logits: torch.Tensor) -> list[bool]:
        """Corrupt rows of `[batch, vocab]` logits in place; return which rows it fired on."""
        fired = []
        n = min(self.settings.n_tokens, len(self.candidates))
        for row in range(logits.shape[0]):
            hit = self._rng.random() < self.settings.p
            fired.append(hit)
            if hit:
                top = float(logits[row].max())
                ids = self._rng.sample(self.candidates, n)
                for rank, token_id in enumerate(ids):
                    logits[row, token_id] = top + self.settings.boost - 0.25 * rank
        return fired
