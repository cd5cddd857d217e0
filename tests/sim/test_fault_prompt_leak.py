"""The incremental detokenizer and its prompt_leak fault: exact text when healthy, and the
decoded prompt tail written first, over HTTP, only for prompts whose last token is a byte piece."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from transformers import AutoTokenizer

from canary.resources import resource_dir
from canary.sim.detokenizer import IncrementalDetokenizer
from canary.sim.server import RunningFleet
from tests.sim.conftest import ENGLISH_PROMPTS

POOL = "lab"


def _tail_prompts() -> list[dict[str, Any]]:
    path = resource_dir("probes") / "prompt_tail.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _detok_text(tokenizer: Any, ids: list[int], prompt: list[int], leak: int | None) -> str:
    detok = IncrementalDetokenizer(tokenizer, prompt, leak)
    for token_id in ids:
        detok.add(token_id)
    detok.flush()
    return detok.text


def test_healthy_detokenizer_is_exactly_decode(model_path: Path) -> None:
    """Random ids (byte pieces, specials, cut characters) and the model's own continuations."""
    from transformers import AutoModelForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    rng = random.Random(0)
    vocab = len(tokenizer)
    cases = [[rng.randrange(vocab) for _ in range(rng.randrange(1, 40))] for _ in range(400)]
    model = AutoModelForCausalLM.from_pretrained(model_path)
    prompts = ENGLISH_PROMPTS + [p["prompt"] for p in _tail_prompts()]
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=16, do_sample=False)
        cases.append(out[0, ids.shape[1] :].tolist())
    for ids in cases:
        assert _detok_text(tokenizer, ids, [], None) == tokenizer.decode(
            ids, skip_special_tokens=True
        ), ids


def test_leak_only_where_the_last_prompt_token_is_a_byte_piece(model_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    completion = tokenizer("hello world")["input_ids"][1:]
    for probe in _tail_prompts():
        prompt = tokenizer(probe["prompt"])["input_ids"]
        text = _detok_text(tokenizer, completion, prompt, 5)
        healthy = str(tokenizer.decode(completion))
        if "split_tail" in probe["tags"]:
            leaked = text.removesuffix(healthy)
            assert text.endswith(healthy) and leaked, probe
            assert probe["prompt"].endswith(leaked.lstrip("\ufffd")), (probe, leaked)
        else:
            assert text == healthy, probe


def _complete(fleet: RunningFleet, prompt: str) -> str:
    body = {"prompt": prompt, "max_tokens": 8, "temperature": 0}
    response = httpx.post(f"{fleet.pool_url(POOL)}/completions", json=body, timeout=60)
    response.raise_for_status()
    return str(response.json()["choices"][0]["text"])


def _set(fleet: RunningFleet, body: dict[str, Any]) -> None:
    url = f"{fleet.base_url}/admin/pools/{POOL}/faults"
    httpx.put(url, json=body, timeout=60).raise_for_status()


@pytest.mark.slow
def test_prompt_leak_over_http(fleet: RunningFleet) -> None:
    probes = _tail_prompts()
    off = {p["id"]: _complete(fleet, p["prompt"]) for p in probes}
    before = fleet.sim.engines[POOL].stats.prompt_leaks
    _set(fleet, {"prompt_leak": {}})
    try:
        on = {p["id"]: _complete(fleet, p["prompt"]) for p in probes}
    finally:
        _set(fleet, {"prompt_leak": None})
    split = [p for p in probes if "split_tail" in p["tags"]]
    for probe in probes:
        healthy, faulted = off[probe["id"]], on[probe["id"]]
        assert not healthy.startswith(probe["prompt"][-2:]), probe
        if probe in split:
            leaked = faulted.removesuffix(healthy)
            assert faulted.endswith(healthy) and len(leaked) >= 2, (probe, faulted)
            assert probe["prompt"].endswith(leaked.lstrip("\ufffd")), (probe, faulted)
        else:
            assert faulted == healthy, probe
    assert fleet.sim.engines[POOL].stats.prompt_leaks - before == len(split)
    assert _complete(fleet, split[0]["prompt"]) == off[split[0]["id"]]
