"""The prefix cache in isolation and in the pool engine: hits are real reuse, outputs do not
change with it, and the stale-KV fault changes warm outputs only."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from canary.probes import load_suite
from canary.sim.engine import GenRequest, PoolEngine
from canary.sim.fleetconfig import PoolConfig, PoolFaults, StalePrefixCache
from canary.sim.prefix_cache import PrefixCache
from canary.sim.weights import ModelStore
from tests.sim.conftest import ENGLISH_PROMPTS

BLOCK = 16


@pytest.fixture(scope="module")
def store(model_path: Path) -> ModelStore:
    return ModelStore(model_path)


@pytest.fixture(scope="module")
def probe_prompts() -> list[str]:
    return [p.prompt or "" for p in load_suite("prefix_cache").probes]


def engine(store: ModelStore, cache: bool, batch: int = 16) -> PoolEngine:
    settings = {"prefix_cache": {"block_size": BLOCK, "max_blocks": 4096}} if cache else {}
    pool = {"name": "p", "max_batch_size": batch, "batch_window_ms": 300, **settings}
    return PoolEngine(PoolConfig.model_validate(pool), store)


@pytest.fixture
def engines(store: ModelStore) -> Iterator[list[PoolEngine]]:
    made: list[PoolEngine] = []
    yield made
    for e in made:
        e.stop()


def started(made: list[PoolEngine], e: PoolEngine) -> PoolEngine:
    e.start()
    made.append(e)
    return e


def greedy(e: PoolEngine, prompts: list[list[int]], max_tokens: int = 20) -> list[str]:
    """The prompts sent together (one batch when they fit), greedy."""

    async def go() -> list[str]:
        requests = [e.generate(GenRequest(ids, max_tokens, temperature=0.0)) for ids in prompts]
        return [r.text for r in await asyncio.gather(*requests)]

    return asyncio.run(go())


def kv(seed: int, tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, 2, tokens, 4, generator=g), torch.randn(1, 2, tokens, 4, generator=g))]


def test_keys_chain_the_parent_so_a_block_is_only_reused_after_its_own_prefix() -> None:
    cache = PrefixCache(block_size=4, max_blocks=100)
    a, b, shared = [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]
    cache.store(a + shared + [0], kv(0, 9), skip_tokens=0)
    assert cache.lookup(b + shared + [0]).tokens == 0
    match = cache.lookup(a + shared + [99])
    assert match.tokens == 8 and match.kv is not None
    assert torch.equal(match.kv[0][0], kv(0, 9)[0][0][:, :, :8])
    # A fully cached prompt still computes its last token, for its logits.
    assert cache.lookup(a + shared).tokens == 4
    # Without the parent hash, the shared block is found after another prefix.
    cache.set_chained(False)
    assert len(cache) == 0, "switching the key scheme empties the cache"
    cache.store([*a, *shared, 0], kv(0, 9), skip_tokens=0)
    cache.store([*b, *shared, 0], kv(1, 9), skip_tokens=0)
    stale = cache.lookup([*a, *shared, 99])
    assert stale.tokens == 8 and stale.kv is not None
    assert torch.equal(stale.kv[0][0][:, :, :4], kv(0, 9)[0][0][:, :, :4])
    assert torch.equal(stale.kv[0][0][:, :, 4:], kv(1, 9)[0][0][:, :, 4:8]), "b's context"


def test_least_recently_used_blocks_are_evicted_first() -> None:
    cache = PrefixCache(block_size=2, max_blocks=4)
    cache.store([1, 2, 3, 4, 0], kv(0, 5), skip_tokens=0)
    cache.store([5, 6, 7, 8, 0], kv(1, 5), skip_tokens=0)
    assert cache.lookup([1, 2, 3, 4, 0]).tokens == 4  # touches the first prompt's blocks
    cache.store([9, 10, 0], kv(2, 3), skip_tokens=0)
    assert len(cache) == 4 and cache.evictions == 1
    assert cache.lookup([5, 6, 7, 8, 0]).tokens == 0, "its first block was the oldest"
    assert cache.lookup([1, 2, 3, 4, 0]).tokens == 4


@pytest.mark.parametrize("batch", [1, 4, 8])
def test_cache_on_gives_the_outputs_of_cache_off_and_counts_real_reuse(
    store: ModelStore, engines: list[PoolEngine], probe_prompts: list[str], batch: int
) -> None:
    tok = store.tokenizer
    prompts = [tok.encode(p) for p in (probe_prompts[:4] + ENGLISH_PROMPTS[:4])][:batch]
    off = started(engines, engine(store, cache=False, batch=batch))
    on = started(engines, engine(store, cache=True, batch=batch))
    expected = greedy(off, prompts)
    cold = greedy(on, prompts)
    warm = greedy(on, prompts)
    assert cold == expected and warm == expected
    assert on.stats.batch_size_requests[batch] == 2 * batch
    full_blocks = sum((len(ids) - 1) // BLOCK for ids in prompts)
    # All prompts share the BOS token only, so the cold pass reuses nothing but the long probe
    # prompts' shared system blocks; the warm pass reuses every full block but the last token.
    assert on.stats.prefix_cache_reused_tokens >= full_blocks * BLOCK
    assert on.stats.prefix_cache_hits >= sum(len(ids) > BLOCK for ids in prompts)
    assert off.stats.prefix_cache_hits == 0 and off.stats.prefix_cache_misses == 0


def test_probe_prompts_repeat_their_blocks_at_block_boundaries(
    store: ModelStore, probe_prompts: list[str]
) -> None:
    """The structure the suite's description promises: two system blocks, then X Y X Y."""
    tok = store.tokenizer
    seen: set[tuple[int, ...]] = set()
    system: list[int] | None = None
    for text in probe_prompts:
        ids = tok.encode(text)
        blocks = [tuple(ids[i : i + BLOCK]) for i in range(0, len(ids) - BLOCK + 1, BLOCK)]
        assert len(blocks) >= 6 and len(ids) % BLOCK, text
        assert blocks[2] == blocks[4] and blocks[3] == blocks[5] and blocks[2] != blocks[3]
        system = system or ids[: 2 * BLOCK]
        assert ids[: 2 * BLOCK] == system
        assert not {blocks[2], blocks[3]} & seen, "no block is shared with another case"
        seen |= {blocks[2], blocks[3]}


def test_stale_prefix_cache_changes_warm_outputs_only(
    store: ModelStore, engines: list[PoolEngine], probe_prompts: list[str]
) -> None:
    tok = store.tokenizer
    prompts = [tok.encode(p) for p in probe_prompts]
    healthy = started(engines, engine(store, cache=True))
    faulty = started(engines, engine(store, cache=True))
    faulty.set_state(
        dataclasses.replace(faulty.state, faults=PoolFaults(stale_prefix_cache=StalePrefixCache()))
    )
    good_cold, good_warm = greedy(healthy, prompts), greedy(healthy, prompts)
    bad_cold, bad_warm = greedy(faulty, prompts), greedy(faulty, prompts)
    assert good_cold == good_warm
    # The cold pass computes every block itself, so the bug cannot show there.
    assert bad_cold == good_cold
    changed = sum(c != w for c, w in zip(bad_cold, bad_warm, strict=True))
    assert changed >= len(prompts) // 3, (changed, len(prompts))
    # Once everything is cached nothing is recomputed: warm and "cold" agree again.
    assert greedy(faulty, prompts) == bad_warm
    # Switching the fault off empties the cache and restores the right outputs.
    faulty.set_state(dataclasses.replace(faulty.state, faults=PoolFaults()))
    assert greedy(faulty, prompts) == good_cold
