"""Each fault measured over real HTTP against the fp32 reference and the healthy pool."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import regex

from canary.sim.server import RunningFleet
from tests.sim.conftest import ENGLISH_PROMPTS

RARE = regex.compile(r"[\p{Thai}\p{Han}]")


def complete(fleet: RunningFleet, pool: str, prompt: str, **params: Any) -> dict[str, Any]:
    body = {"prompt": prompt, "max_tokens": 16, "temperature": 0, **params}
    response = httpx.post(f"{fleet.pool_url(pool)}/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json()["choices"][0])


async def complete_concurrently(
    fleet: RunningFleet, pool: str, prompts: list[str], **params: Any
) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(prompt: str) -> dict[str, Any]:
            body = {"prompt": prompt, "max_tokens": 16, "temperature": 0, **params}
            response = await client.post(f"{fleet.pool_url(pool)}/completions", json=body)
            assert response.status_code == 200, response.text
            return dict(response.json()["choices"][0])

        return await asyncio.gather(*[one(p) for p in prompts])


def batch_sizes(fleet: RunningFleet, pool: str) -> dict[str, int]:
    stats = httpx.get(f"{fleet.base_url}/admin/stats").json()
    return dict(stats["pools"][pool]["batch_size_requests"])


def test_healthy_fp32_pool_matches_reference_exactly(fleet: RunningFleet, reference: Any) -> None:
    prompts = ENGLISH_PROMPTS[:8]
    expected = reference.generate_greedy(prompts, 16, 0)
    alone = [complete(fleet, "gpu-fp32", p, logprobs=0) for p in prompts]
    under_load = asyncio.run(complete_concurrently(fleet, "gpu-fp32", prompts, logprobs=0))
    for ref, one, loaded in zip(expected, alone, under_load, strict=True):
        assert one["logprobs"]["tokens"] == [t.token for t in ref.tokens]
        assert one["text"] == ref.text
        assert loaded["text"] == ref.text
    assert max(int(k) for k in batch_sizes(fleet, "gpu-fp32")) > 1


def _greedy_drops(choices: list[dict[str, Any]]) -> tuple[int, int]:
    """Steps where the greedy pick is not the token with the highest logprob, and all steps."""
    dropped = steps = 0
    for choice in choices:
        lp = choice["logprobs"]
        for token, top in zip(lp["tokens"], lp["top_logprobs"], strict=True):
            steps += 1
            best = max(top, key=top.get)
            dropped += token != best
    return dropped, steps


def test_approx_topk_never_changes_top1_alone_but_does_at_batch_8(fleet: RunningFleet) -> None:
    prompts = ENGLISH_PROMPTS[:8]
    alone = [complete(fleet, "approx", p, logprobs=1, max_tokens=24) for p in prompts]
    assert _greedy_drops(alone) == (0, sum(len(c["logprobs"]["tokens"]) for c in alone))
    before = batch_sizes(fleet, "approx").get("8", 0)
    loaded: list[dict[str, Any]] = []
    for shift in range(3):
        batch = prompts[shift:] + prompts[:shift]  # each prompt visits several batch rows
        loaded += asyncio.run(
            complete_concurrently(fleet, "approx", batch, logprobs=1, max_tokens=24)
        )
    assert batch_sizes(fleet, "approx").get("8", 0) >= before + 16, "requests did not batch"
    dropped, steps = _greedy_drops(loaded)
    assert dropped > 0, f"approx_topk dropped the top token in none of {steps} steps at batch 8"
    assert dropped < steps


def test_corrupt_logits_yields_rare_script_at_rate_p(fleet: RunningFleet) -> None:
    p = 0.25
    prompts = ENGLISH_PROMPTS * 12
    healthy = {q: complete(fleet, "gpu-fp32", q, max_tokens=1)["text"] for q in ENGLISH_PROMPTS}
    clean = [q for q in prompts if not RARE.search(healthy[q])]
    put = httpx.put(
        f"{fleet.base_url}/admin/pools/lab/faults",
        json={"corrupt_logits": {"p": p, "targets": "rare_script", "seed": 11}},
    )
    assert put.status_code == 200, put.text
    try:
        firsts = asyncio.run(complete_concurrently(fleet, "lab", clean, max_tokens=1))
        longer = asyncio.run(complete_concurrently(fleet, "lab", ENGLISH_PROMPTS, max_tokens=32))
    finally:
        httpx.put(f"{fleet.base_url}/admin/pools/lab/faults", json={"corrupt_logits": None})
    n = len(firsts)
    rate = sum(bool(RARE.search(c["text"])) for c in firsts) / n
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(rate - p) < 4 * sd, f"rare-script rate {rate:.3f} vs p={p} (n={n})"
    assert any(RARE.search(c["text"]) for c in longer)


def test_long_context_pool_changes_short_prompts(fleet: RunningFleet, trained: bool) -> None:
    prompts = ENGLISH_PROMPTS[:6]
    healthy = [complete(fleet, "gpu-fp32", q, logprobs=0) for q in prompts]
    stretched = [complete(fleet, "long-ctx", q, logprobs=0) for q in prompts]
    for h, s in zip(healthy, stretched, strict=True):
        # The same first token (if any) gets a different logprob: positions are stretched.
        # (A continuation may be empty: the model can end the text at once.)
        first_h, first_s = h["logprobs"]["tokens"][:1], s["logprobs"]["tokens"][:1]
        if first_h and first_h == first_s:
            assert h["logprobs"]["token_logprobs"][0] != s["logprobs"]["token_logprobs"][0]
    if trained:  # a random-init model barely uses positions; a trained one loses its way
        changed = sum(h["text"] != s["text"] for h, s in zip(healthy, stretched, strict=True))
        assert changed >= len(prompts) // 2, f"only {changed} of {len(prompts)} outputs changed"


def test_bf16_disagreement_is_small(fleet: RunningFleet, reference: Any) -> None:
    expected = reference.generate_greedy(ENGLISH_PROMPTS, 8, 0)
    same_first = gaps = 0
    for ref, prompt in zip(expected, ENGLISH_PROMPTS, strict=True):
        got = complete(fleet, "tpu-bf16", prompt, max_tokens=8, logprobs=0)["logprobs"]
        same = bool(got["tokens"]) and got["tokens"][:1] == [t.token for t in ref.tokens[:1]]
        same_first += same
        if same:
            gaps += abs(got["token_logprobs"][0] - ref.tokens[0].logprob) < 0.1
    assert same_first >= 0.75 * len(ENGLISH_PROMPTS)
    assert gaps == same_first, "bf16 logprobs should stay within 0.1 nats of fp32"


def test_fault_flip_at_run_time_takes_effect_and_is_recorded(fleet: RunningFleet) -> None:
    prompt = ENGLISH_PROMPTS[0]
    base = complete(fleet, "lab", prompt, max_tokens=8)["text"]
    url = f"{fleet.base_url}/admin/pools/lab/faults"
    on = httpx.put(url, json={"corrupt_logits": {"p": 1.0, "targets": "rare_script"}})
    assert on.status_code == 200
    assert on.json()["pool"]["faults"]["corrupt_logits"]["p"] == 1.0
    corrupted = complete(fleet, "lab", prompt, max_tokens=8)["text"]
    assert corrupted != base and RARE.search(corrupted)
    assert httpx.put(url, json={"corrupt_logits": None}).status_code == 200
    assert complete(fleet, "lab", prompt, max_tokens=8)["text"] == base
    events = httpx.get(f"{fleet.base_url}/admin/state").json()["events"]
    assert [e["change"] for e in events if e["target"] == "pool:lab"][-2:] == [
        {"corrupt_logits": {"p": 1.0, "targets": "rare_script"}},
        {"corrupt_logits": None},
    ]


def test_precision_switch_at_run_time(fleet: RunningFleet) -> None:
    url = f"{fleet.base_url}/admin/pools/lab/faults"
    assert httpx.put(url, json={"precision": "bf16"}, timeout=60).status_code == 200
    try:
        state = httpx.get(f"{fleet.base_url}/admin/state").json()["pools"]["lab"]
        assert state["precision"] == "bf16"
        complete(fleet, "lab", ENGLISH_PROMPTS[1], max_tokens=4)
    finally:
        assert httpx.put(url, json={"precision": "fp32"}, timeout=60).status_code == 200
