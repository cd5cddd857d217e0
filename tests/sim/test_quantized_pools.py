"""Pools that serve a different model: quantized weights and a substituted checkpoint.

The figures the thresholds below come from were measured on the shipped model with
`canary.sim.quantize.divergence` over the completion prompts of the shipped probe suites
(`canary.sim.train_substitute.probe_prompts`, 48-token greedy continuations of the fp32 model):

    weights        mean KL   p99 KL   same top-1   (499 positions)
    bf16           0.00014   0.0005   99.0 %
    int8 (g32)     0.00005   0.0002   99.6 %
    int4 (g32)     0.016     0.049    90.4 %
    int4 (g128)    0.025     0.10     91.0 %
    substitute     0.13      0.42     78.4 %       (canary/sim/model_substitute/substitute.json)

A real server measured 8-bit at KL 0.0003 / 99.5 % and 4-bit at 0.013 / 90.5 %, so the shipped
int4 pool (group size 32, llama.cpp's block) is about as far from fp32 as a real 4-bit
deployment; the substitute is a sibling checkpoint, further off than any quantization. Each
variant is loaded once, by one fleet for the whole module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.reference import ReferenceModel, continuation_logprobs
from canary.sim import model_dir
from canary.sim.fleetconfig import SimFleetConfig
from canary.sim.quantize import Divergence, divergence, quantize_dequantize, quantize_model
from canary.sim.server import RunningFleet, running_fleet
from canary.sim.train_substitute import probe_prompts, substitute_dir

POOLS = ("fp32", "bf16", "int8", "int4", "substitute")


@pytest.fixture(scope="module")
def qfleet() -> Iterator[RunningFleet]:
    window = {"max_batch_size": 8, "batch_window_ms": 20}
    config = SimFleetConfig.model_validate(
        {
            "model": str(model_dir()),
            "pools": [
                {"name": "fp32", **window},
                {"name": "bf16", "precision": "bf16", **window},
                {"name": "int8", "weights": "int8", **window},
                {"name": "int4", "weights": "int4", **window},
                {"name": "substitute", "weights": "substitute", **window},
                {"name": "lab", **window},
            ],
        }
    )
    with running_fleet(config) as running:
        yield running


@pytest.fixture(scope="module")
def divergences(qfleet: RunningFleet) -> dict[str, Divergence]:
    """Each served variant's divergence from the served fp32 model, on the probe prompts."""
    store = qfleet.sim.store
    served = {  # the very objects the pools decode with: the store shares one per setting
        "bf16": store.get("bf16", None),
        "int8": store.get("fp32", None, "int8"),
        "int4": store.get("fp32", None, "int4"),
        "substitute": store.get("fp32", None, "substitute"),
    }
    reference = store.get("fp32", None)
    prompts = probe_prompts()
    return {
        name: divergence(reference, model, store.tokenizer, prompts)
        for name, model in served.items()
    }


def complete(fleet: RunningFleet, pool: str, prompt: str, max_tokens: int = 24) -> str:
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
    response = httpx.post(f"{fleet.pool_url(pool)}/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["text"])


def put_weights(fleet: RunningFleet, pool: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(f"{fleet.base_url}/admin/pools/{pool}/faults", json=body, timeout=60)


# -- the quantizer ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 150),
    group_size=st.sampled_from([1, 2, 3, 8, 32, 64, 128]),
    seed=st.integers(0, 2**31 - 1),
    spread=st.floats(1e-3, 1e3),
)
def test_round_trip_stays_within_half_a_step_of_its_group(
    rows: int, cols: int, group_size: int, seed: int, spread: float
) -> None:
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, cols, generator=gen) * spread
    for bits in (8, 4):
        qmax = 2 ** (bits - 1) - 1
        out = quantize_dequantize(weight, bits, group_size)
        assert out.shape == weight.shape and out.dtype == weight.dtype
        for start in range(0, cols, group_size):
            group = weight[:, start : start + group_size]
            step = group.abs().amax(dim=1, keepdim=True) / qmax
            error = (out[:, start : start + group_size] - group).abs()
            assert bool((error <= step / 2 * (1 + 1e-5) + 1e-30).all())
            levels = out[:, start : start + group_size] / step
            assert torch.allclose(levels, levels.round(), atol=1e-3)
            assert bool((levels.abs() <= qmax + 1e-3).all())
        assert torch.allclose(quantize_dequantize(out, bits, group_size), out, rtol=1e-5)


def test_int8_moves_every_weight_matrix_less_than_int4() -> None:
    # Per element int4 can be the luckier grid; per trained matrix it never is.
    from safetensors.torch import load_file

    tensors = load_file(model_dir() / "model.safetensors")
    matrices = {name: w for name, w in tensors.items() if w.ndim == 2}
    assert len(matrices) > 10
    for name, weight in matrices.items():
        errors = {b: (quantize_dequantize(weight, b, 32) - weight).abs().mean() for b in (8, 4)}
        assert 0 < errors[8] < errors[4] / 8, name


def test_zero_groups_stay_zero_and_group_size_is_checked() -> None:
    weight = torch.zeros(2, 64)
    weight[0, 40] = 1.0
    out = quantize_dequantize(weight, 4, 32)
    assert torch.equal(out, weight)
    with pytest.raises(ValueError, match="group_size"):
        quantize_dequantize(weight, 4, 0)


def test_quantize_model_keeps_the_tied_embedding_and_head() -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir(), dtype=torch.float32)
    table = model.get_input_embeddings().weight
    assert isinstance(table, torch.Tensor)
    embedding = table.detach().clone()
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    before = [m.weight.detach().clone() for m in linear]
    changed = quantize_model(model, 4, 32)
    assert changed == len(linear) - 1  # every Linear but the head tied to the embedding
    assert torch.equal(table, embedding)
    assert model.get_output_embeddings().weight is table
    moved = [not torch.equal(m.weight, b) for m, b in zip(linear, before, strict=True)]
    assert sum(moved) == changed


# -- the served variants ---------------------------------------------------------------------


def test_quantized_pools_sit_where_real_quantized_servers_do(
    divergences: dict[str, Divergence],
) -> None:
    bf16, int8, int4 = divergences["bf16"], divergences["int8"], divergences["int4"]
    assert min(d.positions for d in divergences.values()) >= 300
    # bf16 and int8 measured 99.0 % and 99.6 % same top-1: near ties flip and nothing else
    # (a real 8-bit server: 99.5 %); 97 % leaves room for another CPU's rounding.
    assert bf16.same_top1 >= 0.97 and int8.same_top1 >= 0.97
    assert bf16.mean_kl < 0.002 and int8.mean_kl < 0.002
    # int4 measured KL 0.016 / 90.4 % (real 4-bit: 0.013 / 90.5 %): clearly moved, not broken.
    assert 0.005 < int4.mean_kl < 0.1
    assert 0.8 < int4.same_top1 < 0.96
    assert int4.mean_kl > 10 * max(int8.mean_kl, bf16.mean_kl)


def test_int4_and_substitute_pools_answer_differently_but_fluently(
    qfleet: RunningFleet, divergences: dict[str, Divergence]
) -> None:
    prompts = probe_prompts()[:12]
    texts = {pool: [complete(qfleet, pool, p) for p in prompts] for pool in POOLS}
    for pool in ("int4", "substitute"):
        differ = sum(a != b for a, b in zip(texts["fp32"], texts[pool], strict=True))
        assert differ >= 2, f"{pool} answered like fp32 on {len(prompts) - differ} prompts"
    # Fluent: the fp32 reference finds the variants' text about as likely as its own.
    reference = ReferenceModel.load(model_dir())
    nll = {}
    for pool in ("fp32", "int4", "substitute"):
        scored = continuation_logprobs(reference, list(zip(prompts, texts[pool], strict=True)))
        values = [v for row in scored for v in row if v is not None]
        nll[pool] = -sum(values) / len(values)
    assert nll["fp32"] < 1.5
    for pool in ("int4", "substitute"):
        assert nll[pool] < nll["fp32"] + 1.5, nll  # a uniform guess is ln 4096 = 8.3 nats
    assert divergences["substitute"].mean_kl > divergences["int4"].mean_kl


def test_the_shipped_substitute_is_a_sibling_checkpoint() -> None:
    card = json.loads((substitute_dir() / "substitute.json").read_text())
    served = json.loads((model_dir() / "config.json").read_text())
    mine = json.loads((substitute_dir() / "config.json").read_text())
    for key in ("model_type", "vocab_size", "hidden_size", "num_hidden_layers"):
        assert mine[key] == served[key]
    assert not (substitute_dir() / "tokenizer.json").exists()  # shared with the main dir
    assert card["vs_shipped"]["mean_kl"] > 0


# -- switching at run time -------------------------------------------------------------------


def test_weights_switch_at_run_time_over_http(qfleet: RunningFleet) -> None:
    prompts = probe_prompts()[:8]
    fp32 = [complete(qfleet, "fp32", p) for p in prompts]
    int4 = [complete(qfleet, "int4", p) for p in prompts]
    assert [complete(qfleet, "lab", p) for p in prompts] == fp32

    reply = put_weights(qfleet, "lab", {"weights": "int4"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["pool"]["weights"] == "int4"
    assert reply.json()["pool"]["group_size"] == 32
    assert [complete(qfleet, "lab", p) for p in prompts] == int4

    # Another setting changed later keeps the weights.
    assert put_weights(qfleet, "lab", {"token_encoding": "bytes"}).status_code == 200
    assert qfleet.sim.pool_state("lab")["weights"] == "int4"

    reply = put_weights(qfleet, "lab", {"weights": "original", "token_encoding": "replacement"})
    assert reply.status_code == 200, reply.text
    assert [complete(qfleet, "lab", p) for p in prompts] == fp32
    events = httpx.get(f"{qfleet.base_url}/admin/state").json()["events"]
    assert {"target": "pool:lab", "change": {"weights": "int4"}} in [
        {k: e[k] for k in ("target", "change")} for e in events
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"weights": "int3"}, "weights"), ({"group_size": 0}, "group_size")],
)
def test_bad_weights_settings_are_refused_with_one_line(
    qfleet: RunningFleet, body: dict[str, Any], field: str
) -> None:
    reply = put_weights(qfleet, "lab", body)
    assert reply.status_code == 400
    message = reply.json()["error"]["message"]
    assert message.startswith(f"{field}:") and "\n" not in message
    assert qfleet.sim.pool_state("lab")["weights"] == "original"


def test_fleet_file_refuses_unknown_weights() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="weights"):
        SimFleetConfig.model_validate({"pools": [{"name": "a", "weights": "fp8"}]})
