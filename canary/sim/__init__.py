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
