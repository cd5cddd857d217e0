"""A real simulated fleet over HTTP, shared by the sim tests (started once per session)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.reference import ReferenceModel
from canary.sim import model_dir
from canary.sim.fleetconfig import SimFleetConfig
from canary.sim.server import RunningFleet, running_fleet

ENGLISH_PROMPTS = [
    "Return the number of items in the list.",
    "The quick brown fox jumps over",
    "def add(a, b):\n    return",
    "This module provides functions for",
    "If the file does not exist, raise",
    "import os\nimport sys\n\n",
    "class Parser:\n    def __init__(self",
    "Convert a string to lower case and",
    "The default value is None, which means",
    "for i in range(10):\n    print(",
    "Raises ValueError if the argument is",
    "Open the file and read the first line",
]


def _build_dev_model(out: Path) -> Path:
    """A random-init tiny Llama with the real tokenizer recipe, for when none is shipped yet."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from canary.sim.corpus import build_corpus, train_tokenizer

    tokenizer = train_tokenizer(build_corpus(max_files=40))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    override = os.environ.get("CANARY_SIM_TEST_MODEL")
    if override:
        return Path(override)
    shipped = model_dir()
    if (shipped / "config.json").is_file() and (shipped / "tokenizer.json").is_file():
        return shipped
    return _build_dev_model(tmp_path_factory.mktemp("sim-model"))


def fleet_config(model: Path) -> SimFleetConfig:
    window = {"max_batch_size": 16, "batch_window_ms": 40}
    return SimFleetConfig.model_validate(
        {
            "model": str(model),
            "pools": [
                {"name": "gpu-fp32", **window},
                {"name": "tpu-bf16", "precision": "bf16", **window},
                {
                    "name": "long-ctx",
                    "context": "long",
                    "rope_scaling": {"type": "linear", "factor": 8},
                    **window,
                },
                {"name": "approx", "faults": {"approx_topk": {"bucket_size": 120}}, **window},
                {"name": "lab", **window},
            ],
            "router": {"short_pools": ["gpu-fp32"], "long_context_pool": "long-ctx"},
        }
    )


@pytest.fixture(scope="session")
def fleet(model_path: Path) -> Iterator[RunningFleet]:
    with running_fleet(fleet_config(model_path)) as running:
        yield running


@pytest.fixture(scope="session")
def reference(model_path: Path) -> ReferenceModel:
    return ReferenceModel.load(model_path)


@pytest.fixture(scope="session")
def trained(model_path: Path) -> bool:
    """Whether the served model was trained (the shipped dir records its recipe's steps)."""
    import json

    card = model_path / "canary_model.json"
    if not card.is_file():
        return False
    return int(json.loads(card.read_text()).get("recipe", {}).get("steps", 0)) > 0
