"""The fp16_overflow fault: a float16 MLP kernel whose overflow turns logits into NaN, decoded as
`!!!!`, only on inputs with large activations, only on the faulted pool of a shared model."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from canary.resources import resource_dir
from canary.sim.faults.fp16_overflow import FP16_MAX, fp16_forward, fp16_mlp, install
from canary.sim.fleetconfig import Fp16Overflow
from canary.sim.server import RunningFleet
from tests.sim.conftest import ENGLISH_PROMPTS

POOL = "lab"


def _long_prompts() -> list[str]:
    path = resource_dir("probes") / "long_prompt.jsonl"
    return [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_fp16_kernel_matches_fp32_until_it_overflows(model_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path)
    mlp = model.model.layers[0].mlp
    x = torch.randn(2, 7, model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        exact = mlp(x)
        assert torch.allclose(fp16_mlp(mlp, x, 8.0), exact, rtol=0.02, atol=0.02)
        inner = (mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)).abs().amax(-1)
        overflowed = ~torch.isfinite(fp16_mlp(mlp, x, 2 * FP16_MAX / float(inner.min())))
        assert overflowed.all(dim=-1).all()


def test_hook_acts_only_inside_its_own_thread_context(model_path: Path) -> None:
    """The model is shared between pools: another thread's forward passes stay exact."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path)
    ids = torch.tensor([[0, *range(40, 80)]])
    with torch.inference_mode():
        before = model(ids).logits
        install(model)
        install(model)  # idempotent: one hook per layer
        assert len(model.model.layers[3].mlp._forward_hooks) == 1
        seen: dict[str, torch.Tensor] = {}

        def other() -> None:
            with torch.inference_mode():
                seen["other"] = model(ids).logits

        with fp16_forward(Fp16Overflow(layer=3, scale=1e6)):
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            faulted = model(ids).logits
        after = model(ids).logits
    assert torch.isnan(faulted).all()
    assert torch.equal(seen["other"], before) and torch.equal(after, before)


def _complete(fleet: RunningFleet, pool: str, prompt: str, **extra: Any) -> dict[str, Any]:
    body = {"prompt": prompt, "max_tokens": 6, "temperature": 0, **extra}
    response = httpx.post(f"{fleet.pool_url(pool)}/completions", json=body, timeout=120)
    response.raise_for_status()
    choice: dict[str, Any] = response.json()["choices"][0]
    return choice


def _set(fleet: RunningFleet, body: dict[str, Any]) -> None:
    url = f"{fleet.base_url}/admin/pools/{POOL}/faults"
    httpx.put(url, json=body, timeout=60).raise_for_status()


@pytest.mark.slow
def test_fp16_overflow_over_http(fleet: RunningFleet) -> None:
    prompts = _long_prompts() + ENGLISH_PROMPTS
    off = [_complete(fleet, POOL, p)["text"] for p in prompts]
    _set(fleet, {"fp16_overflow": {}})
    try:
        on = [_complete(fleet, POOL, p)["text"] for p in prompts]
        # gpu-fp32 serves the same model object, unfaulted, at the same time.
        shared = [_complete(fleet, "gpu-fp32", p)["text"] for p in prompts]
        sampled = _complete(fleet, POOL, prompts[0], temperature=1.0, seed=1, logprobs=3)
    finally:
        _set(fleet, {"fp16_overflow": None})
    assert "!!!!" not in "".join(off) and shared == off
    hit = [i for i, text in enumerate(on) if text != off[i]]
    assert hit and all(on[i] == "!" * 6 for i in hit)
    # Content-dependent: only prompts with an activation past the kernel's bound overflow.
    assert len(hit) < len(prompts)
    assert sampled["text"] == "!" * 6
    assert all(lp is None or math.isnan(lp) for lp in sampled["logprobs"]["token_logprobs"])
    assert [_complete(fleet, POOL, p)["text"] for p in prompts[:3]] == off[:3]


def test_bad_layer_is_refused(fleet: RunningFleet) -> None:
    url = f"{fleet.base_url}/admin/pools/{POOL}/faults"
    response = httpx.put(url, json={"fp16_overflow": {"layer": 99}}, timeout=60)
    assert response.status_code == 400
    assert "fp16_overflow.layer" in response.json()["error"]["message"]
