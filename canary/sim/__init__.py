"""The simulated serving fleet and the tiny reference model it serves."""

from __future__ import annotations

from pathlib import Path

#: The shipped tiny Llama model and tokenizer, in Hugging Face format.
MODEL_DIR = Path(__file__).resolve().parent / "model"


def model_dir() -> Path:
    """Directory of the shipped model, loadable with `AutoModelForCausalLM.from_pretrained`."""
    return MODEL_DIR


def quiet_transformers() -> None:
    """Silence transformers' progress bars and info logs: canary's output is for people."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def cache_kwarg(model: object) -> str:
    """The keyword a model's ``forward`` takes its KV cache by: ``cache`` from transformers
    5.24 on, ``past_key_values`` before (deprecated since, removed in 5.40). The signature is
    read once per model class, not on every generate batch."""
    import inspect

    model_class = type(model)
    if model_class not in _CACHE_KWARG:
        forward = getattr(model_class, "forward", None)
        takes_cache = forward is not None and "cache" in inspect.signature(forward).parameters
        _CACHE_KWARG[model_class] = "cache" if takes_cache else "past_key_values"
    return _CACHE_KWARG[model_class]


_CACHE_KWARG: dict[type, str] = {}


#: Models smaller than this run faster on one intra-op thread than on several.
SMALL_MODEL_PARAMETERS = 50_000_000


def tune_torch_threads(model: object) -> None:
    """One intra-op thread for a small model (`CANARY_TORCH_THREADS` overrides).

    A tiny model's matmuls are too small to split: with several threads each decode step pays
    synchronisation, and the fleet's pools (each decoding in its own thread) and the reference
    scorer fight over the same cores. Measured on 2 cores under load: 5.6 ms per decode step
    with one thread against 61 ms with two. A large model keeps torch's default.
    """
    import os

    import torch

    wanted = os.environ.get("CANARY_TORCH_THREADS")
    if wanted:
        torch.set_num_threads(int(wanted))
        return
    count = sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]
    if count < SMALL_MODEL_PARAMETERS and torch.get_num_threads() != 1:
        torch.set_num_threads(1)
