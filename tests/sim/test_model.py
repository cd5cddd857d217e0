"""The shipped tiny model: loads with Auto* classes, knows Thai/Han, writes English and code."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest
import regex

from canary.reference import ReferenceModel
from canary.sim import cache_kwarg, model_dir
from canary.sim.train_tiny import CARD_NAME, TEST_SHAPE, main

ENGLISH_PROMPTS = [
    "Return the number of",
    "This function is used to",
    "The default value is",
    "If the file does not exist,",
]
CODE_PROMPTS = [
    "def add(a, b):\n    return",
    "def is_empty(items):\n    return",
    "def get_name(self):\n    return",
    "def close(self):\n    if",
    "def __repr__(self):\n    return",
    "def keys(self):\n    return",
]


@pytest.fixture(scope="module")
def ref() -> ReferenceModel:
    return ReferenceModel.load()


def cut_function(source: str) -> str:
    """The first function of `source`: stop at the first blank line or dedent to column 0."""
    lines = source.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if not line.strip() or not line.startswith((" ", "\t")):
            break
        kept.append(line)
    return "\n".join(kept) + "\n"


def parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


def test_shipped_model_loads_with_auto_classes() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir())
    model = AutoModelForCausalLM.from_pretrained(model_dir())
    assert model.config.model_type == "llama"
    assert model.config.tie_word_embeddings
    assert model.config.max_position_embeddings == 1024
    assert model.get_output_embeddings().weight.shape[0] == len(tokenizer)
    assert {"<|bos|>", "<|eos|>", "<|pad|>"} <= set(tokenizer.all_special_tokens)
    weights = model_dir() / "model.safetensors"
    assert weights.stat().st_size < 20 * 2**20
    card = json.loads((model_dir() / CARD_NAME).read_text())
    assert card["seed"] == 0 and len(card["corpus_sha256"]) == 64


def test_tokenizer_has_whole_thai_and_han_tokens(ref: ReferenceModel) -> None:
    texts = [ref.tokenizer.decode([i]) for i in range(len(ref.tokenizer))]
    whole = [t for t in texts if "\ufffd" not in t]
    assert sum(1 for t in whole if regex.search(r"\p{Thai}", t)) >= 30
    assert sum(1 for t in whole if regex.search(r"\p{Han}", t)) >= 30
    assert ref.tokenizer("สวัสดี")["input_ids"][0] == ref.tokenizer.bos_token_id


def test_healthy_english_output_is_latin_script(ref: ReferenceModel) -> None:
    outputs = ref.generate_greedy(ENGLISH_PROMPTS, max_tokens=24, top_logprobs=0)
    for out in outputs:
        letters = regex.findall(r"\p{L}", out.text)
        assert letters, f"no letters in {out.text!r}"
        assert all(regex.match(r"\p{Latin}", c) for c in letters), out.text


def test_code_completions_mostly_parse(ref: ReferenceModel) -> None:
    outputs = ref.generate_greedy(CODE_PROMPTS, max_tokens=40, top_logprobs=0)
    ok = [parses(cut_function(p + o.text)) for p, o in zip(CODE_PROMPTS, outputs, strict=True)]
    assert sum(ok) > len(ok) / 2, [
        cut_function(p + o.text) for p, o in zip(CODE_PROMPTS, outputs, strict=True)
    ]


def test_training_is_deterministic(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    kwargs = dict(seq_len=32, batch_size=4, shape=TEST_SHAPE, max_files=6, log=lambda _: None)
    a = main(tmp_path / "a", 4, seed=3, **kwargs)  # type: ignore[arg-type]
    b = main(tmp_path / "b", 4, seed=3, **kwargs)  # type: ignore[arg-type]
    assert a.losses == b.losses and len(a.losses) == 4
    assert a.corpus_sha256 == b.corpus_sha256
    wa, wb = load_file(a.out_dir / "model.safetensors"), load_file(b.out_dir / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = main(tmp_path / "c", 4, seed=4, **kwargs)  # type: ignore[arg-type]
    assert c.losses != a.losses


def test_the_cache_keyword_follows_the_installed_transformers() -> None:
    class Renamed:
        def forward(self, input_ids: object = None, cache: object = None) -> None: ...

    class Older:
        def forward(self, input_ids: object = None, past_key_values: object = None) -> None: ...

    assert cache_kwarg(Renamed()) == "cache"
    assert cache_kwarg(Older()) == "past_key_values"
    # The shipped model on the installed transformers takes whichever its forward names.
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir())
    assert cache_kwarg(model) in inspect.signature(model.forward).parameters
