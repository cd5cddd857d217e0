"""Make the substitute checkpoint: the shipped tiny Llama fine-tuned further, differently.

A "different model after a bad deploy" in a real fleet is most often a sibling checkpoint: the
same architecture and tokenizer, trained a little longer or on another data order. This module
makes one from the shipped model (`canary/sim/model`) by continuing training with another seed
(so another document order and other windows), another learning-rate schedule and prose weighted
differently, and saves only the weights and configs to `canary/sim/model_substitute/`; the
tokenizer is the shipped one and is loaded from `canary/sim/model/`.

Reproduce with ``python -m canary.sim.train_substitute`` (the defaults are the shipped recipe;
`substitute.json` in the output records them with the measured KL against the shipped model).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Where the shipped substitute lives.
SUBSTITUTE_DIR = Path(__file__).resolve().parent / "model_substitute"
CARD_NAME = "substitute.json"
#: Files a checkpoint directory needs besides the tokenizer (which is shared with the main dir).
CHECKPOINT_FILES = ("config.json", "generation_config.json", "model.safetensors")


@dataclass(frozen=True)
class SubstituteRecipe:
    """How the substitute differs from the shipped model's last steps; recorded in its card."""

    steps: int = 120
    seed: int = 7
    """Seeds the document order and the training windows (the shipped model used 0)."""
    lr: float = 1e-3
    """Peak of a fresh warm-up + cosine schedule (the shipped run ended at 3e-4)."""
    warmup_steps: int = 10
    prose_repeat: int = 3
    """Prose weighted 3x instead of 2x: the same kind of data, mixed a little differently."""
    batch_size: int = 8
    """Half the shipped batch: 120 x 8 x 256 = 246 k tokens, about a tenth of one pass."""
    seq_len: int = 256
    threads: int = 1


def substitute_dir() -> Path:
    """Directory of the shipped substitute checkpoint (weights and configs only)."""
    return SUBSTITUTE_DIR


def make_substitute(
    out_dir: Path = SUBSTITUTE_DIR,
    recipe: SubstituteRecipe | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune the shipped model by `recipe`, save it to `out_dir`, return the card written."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM, PreTrainedTokenizerFast

    from canary.sim import model_dir, quiet_transformers
    from canary.sim.corpus import build_corpus
    from canary.sim.train_tiny import TrainConfig, set_seed, token_stream, train_model

    quiet_transformers()
    recipe = recipe or SubstituteRecipe()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        t0 = time.perf_counter()
        base = model_dir()
        tokenizer = PreTrainedTokenizerFast.from_pretrained(base)
        corpus = build_corpus(seed=0)
        stream = token_stream(corpus, tokenizer, recipe.seed, recipe.prose_repeat)
        log(f"corpus {corpus.sha256[:12]} -> {stream.numel()} tokens")
        set_seed(recipe.seed)
        model = LlamaForCausalLM.from_pretrained(base, dtype=torch.float32)
        cfg = TrainConfig(
            steps=recipe.steps,
            seed=recipe.seed,
            seq_len=recipe.seq_len,
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            warmup_steps=recipe.warmup_steps,
            prose_repeat=recipe.prose_repeat,
            threads=recipe.threads,
        )
        losses = train_model(model, stream, cfg, log=log, log_every=10)
        out_dir.mkdir(parents=True, exist_ok=True)
        model.generation_config.do_sample = False
        model.save_pretrained(out_dir, safe_serialization=True)
        wall = time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous_threads)

    from canary.sim.quantize import divergence

    probes = probe_prompts()
    fp32 = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    sub = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
    div = divergence(fp32, sub, tokenizer, probes)
    card = {
        "name": "canary-tiny-llama-substitute",
        "made_from": "canary/sim/model (fine-tuned further)",
        "recipe": asdict(recipe),
        "command": "python -m canary.sim.train_substitute",
        "corpus_sha256": corpus.sha256,
        "final_loss_last50": sum(losses[-50:]) / len(losses[-50:]) if losses else None,
        "wall_time_s": round(wall, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
        f"{recipe.threads}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tokenizer": "shared with canary/sim/model",
        "vs_shipped": div.as_dict(),
    }
    (out_dir / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def probe_prompts() -> list[str]:
    """The completion prompts of the shipped `topk`, `determinism` and `smoke` probe suites."""
    from canary.resources import resource_dir

    root = resource_dir("probes")
    prompts: list[str] = []
    for name in ("topk.jsonl", "determinism.jsonl", "smoke.jsonl"):
        path = root / name
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                prompt = json.loads(line).get("prompt") if line.strip() else None
                if isinstance(prompt, str) and prompt not in prompts:
                    prompts.append(prompt)
    return prompts or [_FALLBACK]


_FALLBACK = "Return the number of"


def _cli() -> None:
    defaults = SubstituteRecipe()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=SUBSTITUTE_DIR)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    args = parser.parse_args()
    recipe = SubstituteRecipe(steps=args.steps, seed=args.seed, lr=args.lr, threads=args.threads)
    card = make_substitute(args.out, recipe)
    print(json.dumps(card["vs_shipped"], indent=2))
    if not math.isfinite(card["vs_shipped"]["mean_kl"]):
        raise SystemExit(1)


if __name__ == "__main__":
    _cli()
