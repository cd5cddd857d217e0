"""Automatic prefix caching for a pool: full blocks of prompt KV reused across requests.

The design is vLLM's: a prompt is cut into full blocks of `block_size` tokens; each block is
keyed by a hash of its tokens chained with its parent block's hash, so a key names the whole
prefix up to and including the block, and a block's stored K/V (one tensor pair per layer) is
only ever reused after exactly the tokens it was computed after. A request reuses the longest
run of cached blocks from the start of its prompt, at most all but its last token (that token is
always computed, for its logits), and prefills only the rest. Blocks are evicted least recently
used first once `max_blocks` are held.

The `stale_prefix_cache` fault keys each block by its own tokens only, dropping the parent hash:
the "optimisation" of hashing a block once, independent of what came before. Two prompts with
the same block of tokens at the same offset but a different prefix then share one entry, and the
one stored last wins. A request warm on such a block attends to K/V computed in another
context: only layer 0's K/V depend on the token and position alone, every later layer's depend
on the whole prefix, so the continuation changes with the cache's history rather than the
prompt — the cache-dependent outputs of vLLM#5543 and SGLang#4175. The warm/cold probe family
(`probes/prefix_cache.yaml`) catches it: prompt P cold, then a sibling sharing P's later blocks
after a different first block (its prefill overwrites them), then P again, warm, on the sibling's
K/V. Once every block of a case is cached nothing is recomputed and cold and warm agree again
(both wrong), so the probe sees the bug when the cache state changes between its requests: after
a deploy (switching the fault empties the cache, as a restart does) or under traffic that evicts
the probe's blocks between rounds.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache

#: Per-layer (keys, values), each `[1, kv_heads, tokens, head_dim]`.
LayerKV = list[tuple["torch.Tensor", "torch.Tensor"]]


@dataclass(frozen=True)
class PrefixMatch:
    """The cached prefix a request reuses: its length in tokens and its K/V."""

    tokens: int
    kv: LayerKV | None
    """Per-layer K/V of the first `tokens` prompt tokens; None when nothing is reused."""


class PrefixCache:
    """Block-hashed prompt KV shared by one pool's requests, LRU-evicted; thread-safe."""

    def __init__(self, block_size: int, max_blocks: int) -> None:
        self.block_size = block_size
        self.max_blocks = max_blocks
        self.chained = True
        """Keys chain the parent block's hash; False is the `stale_prefix_cache` fault."""
        self._blocks: OrderedDict[bytes, LayerKV] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._blocks)

    def set_chained(self, chained: bool) -> None:
        """Switch the key scheme; a change empties the cache, as the restart of a deploy does."""
        with self._lock:
            if chained != self.chained:
                self._blocks.clear()
            self.chained = chained

    def block_keys(self, ids: list[int]) -> list[bytes]:
        """One key per full block of `ids`, in order."""
        keys: list[bytes] = []
        parent = b""
        for start in range(0, len(ids) - self.block_size + 1, self.block_size):
            block = ids[start : start + self.block_size]
            digest = hashlib.sha256(parent if self.chained else b"")
            digest.update(b",".join(str(t).encode() for t in block))
            key = digest.digest()
            keys.append(key)
            parent = key
        return keys

    def lookup(self, ids: list[int]) -> PrefixMatch:
        """The longest cached run of blocks at the start of `ids`, leaving ≥ 1 token to compute."""
        import torch

        usable = (len(ids) - 1) // self.block_size
        found: list[LayerKV] = []
        with self._lock:
            for key in self.block_keys(ids)[:usable]:
                block = self._blocks.get(key)
                if block is None:
                    break
                self._blocks.move_to_end(key)
                found.append(block)
        if not found:
            return PrefixMatch(0, None)
        layers = len(found[0])
        kv = [
            (
                torch.cat([b[layer][0] for b in found], dim=-2),
                torch.cat([b[layer][1] for b in found], dim=-2),
            )
            for layer in range(layers)
        ]
        return PrefixMatch(len(found) * self.block_size, kv)

    def store(self, ids: list[int], kv: LayerKV, skip_tokens: int) -> None:
        """Insert the full blocks of `ids` after the first `skip_tokens` (those were reused).

        `kv` holds every layer's K/V for all of `ids`. A key already present is overwritten:
        with chained keys both hold the same prefix's K/V; without, the last context wins.
        """
        size = self.block_size
        keys = self.block_keys(ids)
        with self._lock:
            for index in range(skip_tokens // size, len(keys)):
                span = slice(index * size, (index + 1) * size)
                block = [(k[:, :, span].clone(), v[:, :, span].clone()) for k, v in kv]
                self._blocks[keys[index]] = block
                self._blocks.move_to_end(keys[index])
            while len(self._blocks) > self.max_blocks:
                self._blocks.popitem(last=False)
                self.evictions += 1


def prefill_with_cache(
    model: Any, prompts: list[list[int]], cache: PrefixCache, cache_arg: str
) -> tuple[DynamicCache, torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Prefill each prompt alone after its longest cached prefix, then batch them left-padded.

    Each prompt's uncached tokens are computed with their true position ids on top of the
    reused K/V, and its new full blocks are stored. Every sequence's K/V is then left-padded
    with zeros to the batch width, masked out, so the decode steps that follow see what a
    batched prefill of the padded batch would give. Returns the batch's KV cache, attention
    mask, position ids, last-position logits (fp32) and the tokens each prompt reused.
    """
    import torch
    from transformers import DynamicCache

    per_seq: list[LayerKV] = []
    rows: list[torch.Tensor] = []
    reused: list[int] = []
    for ids in prompts:
        match = cache.lookup(ids)
        past = DynamicCache(ddp_cache_data=match.kv, config=model.config)
        out = model(
            input_ids=torch.tensor([ids[match.tokens :]], dtype=torch.long),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
            position_ids=torch.arange(match.tokens, len(ids)).unsqueeze(0),
            **{cache_arg: past},
            use_cache=True,
        )
        rows.append(out.logits[0, -1, :].float())
        kv = _layer_kv(past)
        cache.store(ids, kv, match.tokens)
        per_seq.append(kv)
        reused.append(match.tokens)
    width = max(len(ids) for ids in prompts)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, ids in enumerate(prompts):
        mask[i, width - len(ids) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    def padded(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, 0, width - t.shape[-2], 0))

    layers = [
        (
            torch.cat([padded(kv[layer][0]) for kv in per_seq]),
            torch.cat([padded(kv[layer][1]) for kv in per_seq]),
        )
        for layer in range(len(per_seq[0]))
    ]
    batch = DynamicCache(ddp_cache_data=layers, config=model.config)
    return batch, mask, positions, torch.stack(rows), reused


def _layer_kv(cache: DynamicCache) -> LayerKV:
    """Every layer's K/V tensors of a filled one-sequence cache."""
    out: LayerKV = []
    for layer in cache.layers:
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if keys is None or values is None:
            raise RuntimeError("prefix caching needs a K/V cache layer in every layer")
        out.append((keys, values))
    return out
