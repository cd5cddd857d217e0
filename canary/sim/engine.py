"""One pool's engine: a batcher that decodes concurrent requests together, step by step.

Requests arriving within `batch_window_ms` of the first (up to `max_batch_size`) form a batch.
The batch is left-padded, prefilled once, then decoded one token per step with a shared KV cache;
a sequence that finishes leaves the batch (its cache rows are dropped), so the batch size at each
step is the real number of sequences decoded together. All torch work runs on the pool's own
worker thread; results go back to the event loop as each sequence finishes.
"""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from canary.sim.detokenizer import IncrementalDetokenizer
from canary.sim.fleetconfig import (
    PoolConfig,
    PoolFaults,
)
from canary.sim.prefix_cache import PrefixCache
from canary.sim.requests import GenRequest, GenResult, PoolState, PoolStats, TokenInfo
from canary.sim.sampling import EXACT, RowSampling, TopkPath, choose_tokens
from canary.sim.token_bytes import TokenBytes

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache

    from canary.sim.weights import ModelStore

    #: A prefilled batch: its KV cache, attention mask, position ids and last-position logits.
    _Prefilled = tuple[DynamicCache, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class _Pending:
    request: GenRequest
    future: asyncio.Future[GenResult]
    loop: asyncio.AbstractEventLoop


@dataclass
class _Seq:
    pending: _Pending
    rows: RowSampling
    ids: list[int] = field(default_factory=list)
    tokens: list[TokenInfo] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    text: str = ""
    finish: str | None = None
    detok: IncrementalDetokenizer | None = None


class PoolEngine:
    """The batching decoder of one pool."""

    def __init__(self, pool: PoolConfig, store: ModelStore) -> None:
        self.name = pool.name
        self.pool = pool
        self.store = store
        self.tokenizer = store.tokenizer
        self.state = PoolState(
            pool.precision,
            pool.rope_scaling,
            pool.faults,
            pool.token_encoding,
            weights=pool.weights,
            group_size=pool.group_size,
        )
        self._bytes = TokenBytes(self.tokenizer)
        self.stats = PoolStats()
        self._model = store.get(pool.precision, pool.rope_scaling, pool.weights, pool.group_size)
        self.max_context = pool.max_context_tokens or int(
            self._model.config.max_position_embeddings
        )
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._corruptor: Any = None
        self.prefix_cache = _prefix_cache(pool)
        self._set_faults(pool.faults)
        eos = self.tokenizer.eos_token_id
        self._eos = int(eos) if eos is not None else None
        pad = self.tokenizer.pad_token_id
        self._pad = int(pad) if pad is not None else (self._eos or 0)
        special = set(self.tokenizer.all_special_ids)
        self._first_regular = next(i for i in range(len(special) + 1) if i not in special)

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sim-{self.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def set_state(self, state: PoolState) -> None:
        """Switch precision, RoPE, weights and faults: the model from the next batch, faults
        next step."""
        model = self.store.get(state.precision, state.rope_scaling, state.weights, state.group_size)
        with self._lock:
            self._model = model
            self._set_faults(state.faults)
            self.state = state

    def _set_faults(self, faults: PoolFaults) -> None:
        from canary.sim.faults import LogitCorruptor, target_token_ids
        from canary.sim.faults.fp16_overflow import check_layer, install

        if faults.fp16_overflow is not None:
            check_layer(self._model, faults.fp16_overflow)
            install(self._model)
        if self.prefix_cache is not None:
            self.prefix_cache.set_chained(faults.stale_prefix_cache is None)
        if faults.corrupt_logits is None:
            self._corruptor = None
        else:
            targets = target_token_ids(self.store.token_strings())
            self._corruptor = LogitCorruptor(faults.corrupt_logits, targets)

    def _topk_path(self) -> TopkPath:
        approx = self.state.faults.approx_topk
        if approx is None:
            return EXACT
        fused = tuple(approx.batch_sizes) if approx.batch_sizes is not None else None
        return TopkPath(bucket_size=approx.bucket_size, fused_batch_sizes=fused)

    # -- requests ------------------------------------------------------------------------------

    async def generate(self, request: GenRequest) -> GenResult:
        """Queue a request for the next batch and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[GenResult] = loop.create_future()
        self._queue.put(_Pending(request, future, loop))
        return await future

    def _fp16_settings(self) -> Any:
        with self._lock:
            return self.state.faults.fp16_overflow

    def _run(self) -> None:
        import torch

        from canary.sim.faults.fp16_overflow import fp16_forward

        window = self.pool.batch_window_ms / 1000
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + window
            while len(batch) < self.pool.max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    item = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            try:
                with torch.inference_mode(), fp16_forward(self._fp16_settings()):
                    self._decode(batch)
            except Exception as exc:  # one bad batch must not kill the pool
                for pending in batch:
                    _deliver(pending, exc)

    def _decode(self, batch: list[_Pending]) -> None:
        import torch

        from canary.sim import cache_kwarg

        with self._lock:
            model = self._model
        seqs = [_Seq(p, _row_sampling(p.request)) for p in batch]
        self.stats.batches += 1
        cache_arg = cache_kwarg(model)
        if self.prefix_cache is None:
            cache, mask, positions, logits = self._prefill(model, batch, cache_arg)
        else:
            cache, mask, positions, logits = self._prefill_cached(model, batch, cache_arg)
        active = list(range(len(seqs)))
        last_pos = positions[:, -1:]
        while True:
            self._step(logits, [seqs[i] for i in active])
            keep = [j for j, i in enumerate(active) if seqs[i].finish is None]
            for i in active:
                if seqs[i].finish is not None:
                    self._finish(seqs[i])
            if not keep:
                return
            if len(keep) < len(active):
                index = torch.tensor(keep, dtype=torch.long)
                cache.batch_select_indices(index)
                mask, last_pos = mask[index], last_pos[index]
                active = [active[j] for j in keep]
            next_ids = torch.tensor([[seqs[i].ids[-1]] for i in active], dtype=torch.long)
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
            last_pos = last_pos + 1
            out = model(
                input_ids=next_ids,
                attention_mask=mask,
                position_ids=last_pos,
                **{cache_arg: cache},
                use_cache=True,
            )
            logits = out.logits[:, -1, :].float()

    def _prefill(self, model: Any, batch: list[_Pending], cache_arg: str) -> _Prefilled:
        """The whole batch left-padded and prefilled in one forward pass."""
        import torch
        from transformers import DynamicCache

        width = max(len(p.request.prompt_ids) for p in batch)
        input_ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, p in enumerate(batch):
            n = len(p.request.prompt_ids)
            input_ids[i, width - n :] = torch.tensor(p.request.prompt_ids)
            mask[i, width - n :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=model.config)
        out = model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            **{cache_arg: cache},
            use_cache=True,
        )
        return cache, mask, positions, out.logits[:, -1, :].float()

    def _prefill_cached(self, model: Any, batch: list[_Pending], cache_arg: str) -> _Prefilled:
        """Each prompt after its longest cached block prefix (`prefill_with_cache`), counted."""
        from canary.sim.prefix_cache import prefill_with_cache

        assert self.prefix_cache is not None
        prompts = [p.request.prompt_ids for p in batch]
        cache, mask, positions, logits, reused = prefill_with_cache(
            model, prompts, self.prefix_cache, cache_arg
        )
        self.stats.prefix_cache_hits += sum(1 for n in reused if n)
        self.stats.prefix_cache_misses += sum(1 for n in reused if not n)
        self.stats.prefix_cache_reused_tokens += sum(reused)
        return cache, mask, positions, logits

    def _step(self, logits: torch.Tensor, seqs: list[_Seq]) -> None:
        """One decoding step for the active sequences: faults, logprobs, sampling, stop checks."""
        import torch

        size = len(seqs)
        with self._lock:
            corruptor = self._corruptor
            path = self._topk_path()
        if corruptor is not None:
            self.stats.corrupt_logits_fired += sum(corruptor.apply(logits))
        for row, seq in enumerate(seqs):
            processor = seq.pending.request.logits_processor
            if processor is not None:
                processor(list(seq.ids), logits[row])
        if path.bucket_size is not None and path.fused(size):
            self.stats.approx_topk_fused_steps += size
        chosen = self._choose(logits, seqs, path)
        want_lp = [s.pending.request.logprobs is not None for s in seqs]
        logprobs = torch.log_softmax(logits, dim=-1) if any(want_lp) else None
        self.stats.batch_size_steps[size] += size
        for r, (seq, token_id) in enumerate(zip(seqs, chosen, strict=True)):
            request = seq.pending.request
            if not seq.batch_sizes:
                self.stats.batch_size_requests[size] += 1
            seq.batch_sizes.append(size)
            info = TokenInfo(token_id, self._decode_text([token_id]), raw=self._bytes(token_id))
            if logprobs is not None and request.logprobs is not None:
                info.logprob = float(logprobs[r, token_id])
                if request.logprobs > 0:
                    values, ids = logprobs[r].topk(request.logprobs)
                    info.top = [
                        (self._decode_text([int(i)]), float(v))
                        for v, i in zip(values, ids, strict=True)
                    ]
                    info.top_raw = [self._bytes(int(i)) for i in ids]
            detok = self._detokenizer(seq)
            if token_id == self._eos:
                seq.finish = "stop"
            else:
                seq.ids.append(token_id)
                seq.tokens.append(info)
                detok.add(token_id)
                if len(seq.ids) >= request.max_tokens:
                    seq.finish = "length"
            if seq.finish is not None:
                detok.flush()
            seq.text = detok.text
            cut = _stop_at(seq.text, request.stop)
            if cut is not None:
                seq.text = seq.text[:cut]
                seq.finish = "stop"

    def _choose(self, logits: torch.Tensor, seqs: list[_Seq], path: TopkPath) -> list[int]:
        """Sample each row; a row with NaN takes the token torch's argmax lands on.

        Greedy argmax and vLLM's sampler (an exponential race: argmax of probs / noise) both
        return the first NaN's index. Llama 3 and Qwen keep their special tokens at the end of
        the vocabulary, so that index is 0, `!`; this vocabulary starts with its special
        tokens, so the race is run over the regular tokens and lands on `!` the same way.
        """
        import torch

        nan = torch.isnan(logits[:, self._first_regular :])
        broken = nan.any(dim=-1)
        if not bool(broken.any()):
            return choose_tokens(logits, [s.rows for s in seqs], path)
        self.stats.nan_logit_steps += int(broken.sum())
        chosen = choose_tokens(torch.nan_to_num(logits, nan=0.0), [s.rows for s in seqs], path)
        first = nan.int().argmax(dim=-1) + self._first_regular
        return [int(first[r]) if broken[r] else c for r, c in enumerate(chosen)]

    def _detokenizer(self, seq: _Seq) -> IncrementalDetokenizer:
        if seq.detok is None:
            with self._lock:
                leak = self.state.faults.prompt_leak
            offset = leak.offset if leak is not None else None
            prompt = seq.pending.request.prompt_ids
            seq.detok = IncrementalDetokenizer(self.tokenizer, prompt, offset)
            self.stats.prompt_leaks += seq.detok.leaked
        return seq.detok

    def _decode_text(self, ids: list[int], skip_special: bool = False) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=skip_special))

    def _finish(self, seq: _Seq) -> None:
        request = seq.pending.request
        self.stats.requests += 1
        self.stats.completion_tokens += len(seq.ids)
        result = GenResult(
            text=seq.text,
            tokens=seq.tokens,
            finish_reason=seq.finish or "length",
            prompt_tokens=len(request.prompt_ids),
            batch_sizes=seq.batch_sizes,
        )
        _deliver(seq.pending, result)


def _prefix_cache(pool: PoolConfig) -> PrefixCache | None:
    settings = pool.prefix_cache
    if settings is None:
        return None
    return PrefixCache(settings.block_size, settings.max_blocks)


def _row_sampling(request: GenRequest) -> RowSampling:
    import torch

    generator = torch.Generator()
    seed = request.seed if request.seed is not None else random.getrandbits(63)
    generator.manual_seed(seed % (2**63))
    return RowSampling(request.temperature, request.top_p, request.top_k, generator)


def _stop_at(text: str, stops: list[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def _deliver(pending: _Pending, outcome: GenResult | BaseException) -> None:
    def settle() -> None:
        if pending.future.done():
            return
        if isinstance(outcome, BaseException):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)

    pending.loop.call_soon_threadsafe(settle)


__all__ = ["GenRequest", "GenResult", "PoolEngine", "PoolState", "PoolStats", "TokenInfo"]
