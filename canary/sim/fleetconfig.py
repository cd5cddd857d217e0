"""The simulated fleet file: pools with their engine settings and faults, and the front door."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from canary.config.fleet import SLUG
from canary.config.loading import load_model_file
from canary.sim.quantize import DEFAULT_GROUP_SIZE

Precision = Literal["fp32", "bf16"]
#: How a pool writes a token that ends inside a UTF-8 character, as real servers differ:
#: `replacement` its decoded text with U+FFFD (Hugging Face decode, Ollama), `empty` as `""`
#: with such alternatives colliding on one `""` key (vLLM), `bytes` OpenAI's way: a `bytes`
#: list for the token and each alternative in chat, `bytes:\xNN` tokens in completions.
TokenEncoding = Literal["replacement", "empty", "bytes"]
TOKEN_ENCODINGS: tuple[TokenEncoding, ...] = ("replacement", "empty", "bytes")
#: Which weights a pool serves: the checkpoint `original`ly trained, a copy quantized at load
#: time to `int8` or `int4` (symmetric per-group round-to-nearest, then dequantized; see
#: `canary.sim.quantize`), or the `substitute` checkpoint (same shape and tokenizer, trained on).
Weights = Literal["original", "int8", "int4", "substitute"]
WEIGHTS: tuple[Weights, ...] = ("original", "int8", "int4", "substitute")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RopeScaling(_Strict):
    """RoPE scaling for a long context window; stretches positions, so short prompts degrade."""

    type: Literal["linear", "yarn"] = "linear"
    """Scaling method, as transformers names it (`rope_type`)."""
    factor: Annotated[float, Field(ge=8, le=1024)] = 8.0
    """Context stretch factor; at least 8, as for a 1M-token window over a short-trained model."""


class CorruptLogits(_Strict):
    """A runtime "optimisation" that sometimes hands a few unlikely tokens a high logit."""

    p: Annotated[float, Field(ge=0, le=1)] = 0.05
    """Probability per decoding step, per sequence, that the corruption fires."""
    boost: Annotated[float, Field(ge=0, le=100)] = 5.0
    """How far above the row's top logit the chosen tokens are set (nats)."""
    targets: Literal["rare_script", "syntax", "both"] = "rare_script"
    """Tokens boosted: Thai/Han, syntax-breaking (brackets, quotes, colons), or both."""
    n_tokens: Annotated[int, Field(ge=1, le=16)] = 3
    """How many target tokens are boosted each time it fires."""
    seed: int | None = None
    """Seed of the fault's own random stream; none means a fresh one per switch-on."""


class ApproxTopk(_Strict):
    """Bucketed approximate top-k whose fused batch layout drops tokens at batch sizes above 1."""

    bucket_size: Annotated[int, Field(ge=2, le=65536)] = 120
    """Vocabulary entries per bucket; the bug bites when it does not divide the vocabulary size."""
    batch_sizes: list[Annotated[int, Field(ge=2)]] | None = None
    """Batch sizes that take the fused (buggy) layout; none means every batch size above 1."""


class Fp16Overflow(_Strict):
    """A fused kernel that runs one decoder layer's MLP in float16 after a static input pre-scale.

    Activations whose scaled product leaves fp16's range (65504) overflow to inf; the next norm
    turns them into NaN, which spreads through attention to every later position and every
    logit, so only prompts with large activations at that layer are hit (vLLM#13035).
    """

    layer: Annotated[int, Field(ge=0)] = 3
    """Index of the decoder layer whose MLP takes the fp16 path."""
    scale: Annotated[float, Field(gt=0, le=1e6)] = 3000.0
    """The kernel's pre-scale of the up branch; inner products above `65504 / scale` overflow."""


class PromptLeak(_Strict):
    """An incremental detokenizer that seeds its window with the prompt tail at wrong offsets.

    When the last prompt token is part of a character (byte pieces of Thai/CJK), the read offset
    starts at the prefix offset instead of after the prompt, so the first text emitted repeats
    the decoded prompt tail (vLLM#48853). Prompts ending on a whole character are unaffected.
    """

    offset: Annotated[int, Field(ge=1, le=64)] = 5
    """Prompt tokens seeded into the detokenizer's window (vLLM's initial offset is 5)."""


class StalePrefixCache(_Strict):
    """Prefix-cache blocks keyed by their own tokens only, so K/V is reused after another prefix.

    Needs a pool with `prefix_cache` set; switching it empties the cache (see
    `canary.sim.prefix_cache`)."""


class ToolCallFormat(_Strict):
    """A tool-call parser bug: with probability `p` per tool call, its `arguments` string is
    mangled after decoding, as serving stacks' tool parsers have done (K2 Vendor Verifier)."""

    p: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Probability per tool call that the bug bites."""
    variant: Literal["truncate", "double_encode"] = "truncate"
    """`truncate` drops the closing brace; `double_encode` JSON-encodes the arguments twice."""
    seed: int | None = None
    """Seed of the fault's own random stream; none means a fresh one per switch-on."""


class PoolFaults(_Strict):
    """Faults of one pool; every one is off unless set."""

    corrupt_logits: CorruptLogits | None = None
    """Boost rare-script or syntax-breaking tokens with probability `p` per step; off if unset."""
    approx_topk: ApproxTopk | None = None
    """Sample through the buggy approximate top-k instead of the exact one; off if unset."""
    stale_prefix_cache: StalePrefixCache | None = None
    """Serve stale prefix-cache K/V computed after a different prefix; off if unset."""
    fp16_overflow: Fp16Overflow | None = None
    """Run one layer's MLP in fp16 so large activations overflow into NaN logits; off if unset."""
    prompt_leak: PromptLeak | None = None
    """Detokenize with offsets that leak a mid-character prompt tail; off if unset."""
    tool_call_format: ToolCallFormat | None = None
    """Mangle a share `p` of tool calls' arguments in the tool parser; off if unset."""


class PrefixCacheSettings(_Strict):
    """Automatic prefix caching: full blocks of prompt K/V reused across requests (vLLM-style)."""

    block_size: Annotated[int, Field(ge=1, le=1024)] = 16
    """Tokens per cached block; only full blocks of a prompt are cached."""
    max_blocks: Annotated[int, Field(ge=1, le=1_000_000)] = 1024
    """Blocks held at most; the least recently used is evicted beyond that."""


class PoolConfig(_Strict):
    """One serving pool: its own engine (precision, RoPE, batching) and its own faults."""

    name: str
    """Unique slug; the pool is served at `/pools/{name}/v1/...`."""
    precision: Precision = "fp32"
    """Dtype of the model's forward pass; logits are cast to fp32 only after it."""
    rope_scaling: RopeScaling | None = None
    """RoPE scaling of this pool's copy of the weights; none means the trained positions."""
    context: Literal["short", "long"] = "short"
    """Context class the front door routes by."""
    max_batch_size: Annotated[int, Field(ge=1, le=256)] = 16
    """Most sequences decoded together in one batch."""
    batch_window_ms: Annotated[float, Field(ge=0, le=1000)] = 5.0
    """How long the batcher waits after the first request for others to join its batch."""
    max_context_tokens: Annotated[int | None, Field(ge=16)] = None
    """Prompt plus completion limit; none means the model's `max_position_embeddings`."""
    faults: PoolFaults = Field(default_factory=PoolFaults)
    """Faults active at start-up; switch them at run time with `PUT /admin/pools/{name}/faults`."""
    prefix_cache: PrefixCacheSettings | None = None
    """Reuse cached prompt K/V across requests; none (the default) prefills every prompt whole."""
    token_encoding: TokenEncoding = "replacement"
    """How partial-character tokens are written in logprobs: `replacement`, `empty`, `bytes`."""
    weights: Weights = "original"
    """Weights served: `original`, `int8`, `int4` or `substitute`; switchable at run time."""
    group_size: Annotated[int, Field(ge=1, le=4096)] = DEFAULT_GROUP_SIZE
    """Input columns sharing one scale in `int8`/`int4` (llama.cpp's 32; GPTQ's default 128)."""

    @field_validator("name")
    @classmethod
    def _name_format(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("use lowercase letters, digits, '-', '_' or '.' (at most 63)")
        return value


class RouterConfig(_Strict):
    """The front door: routes by context length, sticky per session."""

    sticky: bool = True
    """Route a session's requests by a hash of its key, so they keep landing in the same place."""
    session_header: str = "x-session-id"
    """Request header holding the session key; the `user` field is the fallback."""
    short_pools: list[str] | None = None
    """Pools short requests are spread over; none means every pool with `context: short`."""
    long_context_pool: str | None = None
    """Pool for long prompts and misrouted sessions; none means the first `context: long` pool."""
    misroute_share: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Share of short-context sessions wrongly sent to the long-context pool."""
    short_context_max_tokens: Annotated[int, Field(ge=1)] = 512
    """Prompts longer than this (in tokens) go to the long-context pool, correctly."""


class SimFleetConfig(_Strict):
    """A simulated serving fleet: pools, front door, and where it listens."""

    model: Path | None = None
    """Hugging Face model dir served by every pool; none means the shipped tiny model."""
    model_name: str = "canary-tiny"
    """Model name reported by `/v1/models` and in responses."""
    host: str = "127.0.0.1"
    """Address `canary sim serve` listens on."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8400
    """Port `canary sim serve` listens on; 0 picks a free one."""
    served_by_header: bool = False
    """Add `x-served-pool` to responses; off by default, as real routers often hide it."""
    pools: list[PoolConfig]
    """The serving pools."""
    router: RouterConfig = Field(default_factory=RouterConfig)
    """The front door at `/v1/...`."""

    @model_validator(mode="after")
    def _consistent(self) -> SimFleetConfig:
        names = [p.name for p in self.pools]
        if not names:
            raise ValueError("the fleet has no pools")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool name {dupes[0]!r} appears twice; names are unique")
        for name in [*(self.router.short_pools or []), self.router.long_context_pool]:
            if name is not None and name not in names:
                raise ValueError(f"router names pool {name!r}, which is not in 'pools'")
        if not self.short_pool_names():
            raise ValueError(
                "no short-context pool for the front door; add one with context: short"
            )
        return self

    def pool(self, name: str) -> PoolConfig:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)

    def short_pool_names(self) -> list[str]:
        if self.router.short_pools is not None:
            return list(self.router.short_pools)
        return [p.name for p in self.pools if p.context == "short"]

    def long_pool_name(self) -> str | None:
        if self.router.long_context_pool is not None:
            return self.router.long_context_pool
        return next((p.name for p in self.pools if p.context == "long"), None)

    def model_path(self) -> Path:
        if self.model is not None:
            return self.model
        from canary.sim import model_dir

        return model_dir()


def load_sim_fleet(path: str | Path) -> SimFleetConfig:
    """Read and validate a simulated fleet file (YAML, TOML or JSON)."""
    path = Path(path)
    fleet = load_model_file(SimFleetConfig, path)
    if fleet.model is not None and not fleet.model.is_absolute():
        fleet = fleet.model_copy(update={"model": (path.parent / fleet.model).resolve()})
    return fleet


def merge_settings(current: BaseModel | None, update: Any, model: type[BaseModel]) -> Any:
    """Overlay a partial settings mapping on the current ones (or the defaults); None turns off."""
    if update is None:
        return None
    if not isinstance(update, dict):
        raise ValueError("expected an object of settings, or null to turn it off")
    base = current.model_dump() if current is not None else {}
    return model.model_validate({**base, **update})
