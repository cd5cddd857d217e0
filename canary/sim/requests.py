"""What a pool's engine is asked and answers: requests, generated tokens, results, the pool's
switchable state and its counters (the admin API's stats)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from canary.sim.fleetconfig import PoolFaults, Precision, RopeScaling, TokenEncoding, Weights
from canary.sim.quantize import DEFAULT_GROUP_SIZE

if TYPE_CHECKING:
    import torch


@dataclass
class GenRequest:
    """One completion to generate, already tokenized."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: int | None = None
    """None: no logprobs; n ≥ 0: the chosen token's logprob and the n best alternatives."""
    logits_processor: Callable[[list[int], torch.Tensor], None] | None = None
    """Called every step with this sequence's generated ids and its `[vocab]` fp32 logits row,
    which it may change in place (guided decoding masks tokens here), before sampling."""


@dataclass
class TokenInfo:
    token_id: int
    text: str
    logprob: float | None = None
    top: list[tuple[str, float]] = field(default_factory=list)
    raw: bytes | None = None
    """The token's bytes (its text is U+FFFD where it ends inside a character)."""
    top_raw: list[bytes | None] = field(default_factory=list)
    """The bytes of each `top` alternative, in the same order."""


@dataclass
class GenResult:
    text: str
    tokens: list[TokenInfo]
    finish_reason: str
    prompt_tokens: int
    batch_sizes: list[int]
    """Batch size at each decoding step of this request (server-side stats only)."""


@dataclass
class PoolState:
    """What the admin API can change at run time."""

    precision: Precision
    rope_scaling: RopeScaling | None
    faults: PoolFaults
    token_encoding: TokenEncoding = "replacement"
    """How partial-character tokens are written in responses (the API layer reads it)."""
    weights: Weights = "original"
    """Which weights the pool serves (original, int8, int4, substitute), from the next batch."""
    group_size: int = DEFAULT_GROUP_SIZE
    """Input columns per scale of `int8`/`int4` weights."""


@dataclass
class PoolStats:
    requests: int = 0
    completion_tokens: int = 0
    batches: int = 0
    batch_size_requests: Counter[int] = field(default_factory=Counter)
    """Requests by the batch size they landed in (at their first decoding step)."""
    batch_size_steps: Counter[int] = field(default_factory=Counter)
    """Sequence-steps by the batch size of that step."""
    corrupt_logits_fired: int = 0
    approx_topk_fused_steps: int = 0
    nan_logit_steps: int = 0
    """Sequence-steps whose logits held NaN (the fp16_overflow fault, or a real overflow)."""
    prompt_leaks: int = 0
    """Sequences whose detokenizer put prompt text before the completion (prompt_leak)."""
    prefix_cache_hits: int = 0
    """Requests that reused at least one cached prompt block."""
    prefix_cache_misses: int = 0
    """Requests on a prefix-caching pool that reused nothing."""
    prefix_cache_reused_tokens: int = 0
    """Prompt tokens whose K/V came from the prefix cache instead of the prefill."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "completion_tokens": self.completion_tokens,
            "batches": self.batches,
            "batch_size_requests": {str(k): v for k, v in sorted(self.batch_size_requests.items())},
            "batch_size_steps": {str(k): v for k, v in sorted(self.batch_size_steps.items())},
            "corrupt_logits_fired": self.corrupt_logits_fired,
            "approx_topk_fused_steps": self.approx_topk_fused_steps,
            "nan_logit_steps": self.nan_logit_steps,
            "prompt_leaks": self.prompt_leaks,
            "prefix_cache_hits": self.prefix_cache_hits,
            "prefix_cache_misses": self.prefix_cache_misses,
            "prefix_cache_reused_tokens": self.prefix_cache_reused_tokens,
        }
