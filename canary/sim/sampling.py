"""The logits→token path: exact sampler, or the approximate top-k one when that fault is on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from canary.sim.faults.approx_topk import approx_topk


@dataclass
class RowSampling:
    """Sampling parameters of one sequence, with its own random stream."""

    temperature: float
    top_p: float
    top_k: int | None
    generator: torch.Generator


@dataclass(frozen=True)
class TopkPath:
    """How candidates are found: exact (None bucket size) or bucketed approximate."""

    bucket_size: int | None = None
    fused_batch_sizes: tuple[int, ...] | None = None

    def fused(self, batch_size: int) -> bool:
        if batch_size < 2:
            return False
        return self.fused_batch_sizes is None or batch_size in self.fused_batch_sizes


EXACT = TopkPath()


def choose_tokens(
    logits: torch.Tensor, rows: Sequence[RowSampling], path: TopkPath = EXACT
) -> list[int]:
    """Pick one token per row of fp32 `[batch, vocab]` logits; temperature 0 is greedy."""
    batch = logits.shape[0]
    if path.bucket_size is not None:
        values, ids = approx_topk(logits, path.bucket_size, fused=path.fused(batch))
    else:
        values, ids = None, None
    chosen = []
    for r, params in enumerate(rows):
        if values is None or ids is None:
            if params.temperature == 0:
                chosen.append(int(logits[r].argmax()))
                continue
            row_values, row_ids = logits[r].sort(descending=True, stable=True)
        else:
            row_values, row_ids = values[r], ids[r]
            if params.temperature == 0:
                chosen.append(int(row_ids[0]))
                continue
        chosen.append(_sample(row_values, row_ids, params))
    return chosen


def _sample(values: torch.Tensor, ids: torch.Tensor, params: RowSampling) -> int:
    """Sample from candidates sorted best first: temperature, then top-k, then top-p."""
    if params.top_k is not None:
        values, ids = values[: params.top_k], ids[: params.top_k]
    probs = torch.softmax(values / params.temperature, dim=-1)
    if params.top_p < 1.0:
        before = probs.cumsum(dim=-1) - probs
        probs = torch.where(before < params.top_p, probs, torch.zeros_like(probs))
        probs = probs / probs.sum()
    pick = torch.multinomial(probs, 1, generator=params.generator)
    return int(ids[pick])
