"""Bucketed approximate top-k with a fused-layout bug that only bites for batch sizes above 1.

The approximation is the usual one: split each row of the vocabulary into buckets, keep each
bucket's maximum, then take the top-k over the bucket winners. Two of the true top-k sharing a
bucket lose one of them, which only touches low-ranked tokens; the row's maximum always wins its
bucket, so a correct implementation never loses top-1.

The bug is the "optimisation": instead of padding every row to a whole number of buckets, the
fused path flattens `[batch, vocab]`, pads the flat tensor once, and views it back as
`[batch, buckets, bucket_size]`. Row `r`'s buckets then start at `r * buckets * bucket_size`
instead of `r * vocab`, so when `bucket_size` does not divide the vocabulary, row `r`'s first
`r * pad` token ids fall into row `r - 1`'s last bucket. Ids are recovered correctly from the flat
index, so they are out of range for row `r - 1` and masked there: those tokens silently vanish.
Row 0 is never affected, so batch size 1 is always exact; at batch size 8 the last rows lose the
low token ids, where byte-level BPE keeps punctuation and digits — often the most probable token.
"""

from __future__ import annotations

import math

import torch


def dropped_prefix(vocab_size: int, bucket_size: int, row: int) -> int:
    """How many leading token ids row `row` loses in the fused layout."""
    pad = math.ceil(vocab_size / bucket_size) * bucket_size - vocab_size
    return min(row * pad, vocab_size)


def approx_topk(
    logits: torch.Tensor, bucket_size: int, *, fused: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate values and token ids per row, best first: one winner per bucket.

    `logits` is `[batch, vocab]`. Returns `[batch, n_buckets]` values (masked entries are -inf)
    and ids. `fused` takes the flattened single-pad layout (the buggy fast path).
    """
    batch, vocab = logits.shape
    n_buckets = math.ceil(vocab / bucket_size)
    row_len = n_buckets * bucket_size
    neg_inf = torch.finfo(logits.dtype).min
    if fused:
        flat = torch.nn.functional.pad(
            logits.reshape(-1), (0, batch * (row_len - vocab)), value=neg_inf
        )
        buckets = flat.view(batch, n_buckets, bucket_size)
        values, local = buckets.max(dim=-1)
        flat_index = (
            torch.arange(batch).unsqueeze(1) * row_len
            + torch.arange(n_buckets).unsqueeze(0) * bucket_size
            + local
        )
        # Ids from the flat index, relative to the row the bucket was (wrongly) assigned to.
        ids = flat_index - torch.arange(batch).unsqueeze(1) * vocab
    else:
        padded = torch.nn.functional.pad(logits, (0, row_len - vocab), value=neg_inf)
        values, local = padded.view(batch, n_buckets, bucket_size).max(dim=-1)
        ids = torch.arange(n_buckets).unsqueeze(0) * bucket_size + local
    valid = (ids >= 0) & (ids < vocab)
    values = torch.where(valid, values, torch.full_like(values, float("-inf")))
    ids = torch.where(valid, ids, torch.zeros_like(ids))
    order = values.argsort(dim=-1, descending=True, stable=True)
    return values.gather(1, order), ids.gather(1, order)
