"""Train the tiny Llama reference model that the simulated fleet serves, on CPU, reproducibly.

The model is a `transformers.LlamaForCausalLM` (RoPE, tied embeddings, fp32) trained on the
corpus of `canary.sim.corpus`: stdlib docstrings (English prose) and function sources (code),
plus a small Thai/CJK slice. `max_position_embeddings` is 1024 although training uses 256-token
windows, so the sim's long-context pool can apply RoPE scaling by 8x or more and visibly drift.

Measured recipe of the shipped model (`canary/sim/model`; `canary_model.json` has the rest):

- model: 5 layers, hidden 192, 6 heads (head dim 32), MLP 512, vocab 4096, RoPE theta 1e4,
  max positions 1024, tied embeddings; 3.00 M parameters, 12.0 MB safetensors in fp32.
- data: corpus sha256 9c3bdc0f9b86… (CPython 3.11.7 stdlib: 6,888 docstrings, 15,039 functions,
  302 Thai/CJK paragraphs), 2.36 M tokens with prose repeated twice; random 256-token windows.
- optimiser: AdamW (0.9, 0.95), weight decay 0.1, lr 3e-3, 60 warm-up steps, cosine to 3e-4,
  grad clip 1.0, batch 16 x 256 tokens; seed 0.
- run: 1800 steps (7.4 M tokens, ~3 passes) in 1790 s wall (1.0 step/s; 0.3-1.5 step/s as the
  CPU was shared) on 2 shared x86_64 cores, torch 2.13 CPU, 2 threads;
  final loss 2.47 (mean of the last 50 steps; a uniform guess scores ln 4096 = 8.3).

Reproduce with ``python -m canary.sim.train_tiny --out canary/sim/model`` (or ``canary sim train``).
The same seed, Python build (the corpus is its stdlib), torch version and thread count give the
same weights (tested in-process on a tiny shape by tests/sim/test_model.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from canary.sim.corpus import Corpus

#: Steps of the shipped model's recipe.
DEFAULT_STEPS = 1800
CARD_NAME = "canary_model.json"


@dataclass(frozen=True)
class ModelShape:
    """Architecture of the tiny Llama; the default is ~3 M parameters (~12 MB in fp32)."""

    hidden_size: int = 192
    num_hidden_layers: int = 5
    num_attention_heads: int = 6
    intermediate_size: int = 512
    max_position_embeddings: int = 1024
    rope_theta: float = 10000.0


#: A shape small enough for tests (a few seconds per run).
TEST_SHAPE = ModelShape(
    hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
)


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and data settings; recorded verbatim in the model card."""

    steps: int = DEFAULT_STEPS
    seed: int = 0
    seq_len: int = 256
    batch_size: int = 16
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 60
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    vocab_size: int = 4096
    prose_repeat: int = 2
    """Prose is a quarter of the stdlib text; repeating it balances English against code."""
    threads: int = 2
    max_files: int | None = None
    """Use only the first N stdlib files (tests)."""
    shape: ModelShape = field(default_factory=ModelShape)


@dataclass
class TrainResult:
    """What a training run did; `losses` holds the loss of every step."""

    out_dir: Path
    steps: int
    wall_time_s: float
    final_loss: float | None
    losses: list[float]
    n_params: int
    corpus_sha256: str
    train_tokens: int


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_config(tokenizer: PreTrainedTokenizerFast, shape: ModelShape) -> LlamaConfig:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_attention_heads,
        max_position_embeddings=shape.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta},
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )


def token_stream(
    corpus: Corpus, tokenizer: PreTrainedTokenizerFast, seed: int, prose_repeat: int
) -> torch.Tensor:
    """All documents as one stream `bos doc eos bos doc eos …`, in a seeded shuffled order."""
    import torch

    texts = corpus.texts("code") + corpus.texts("multilingual")
    texts += corpus.texts("prose") * prose_repeat
    random.Random(seed).shuffle(texts)
    # The tokenizer's post-processor prepends bos, exactly as for prompts at inference time.
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    eos = tokenizer.eos_token_id
    flat: list[int] = []
    for doc in ids:
        flat.extend(doc)
        flat.append(eos)
    return torch.tensor(flat, dtype=torch.long)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio * lr`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def train_model(
    model: LlamaForCausalLM,
    stream: torch.Tensor,
    cfg: TrainConfig,
    log: Callable[[str], None] = print,
    log_every: int = 25,
) -> list[float]:
    """Run `cfg.steps` AdamW steps on random windows of `stream`; returns the per-step losses."""
    import torch

    gen = torch.Generator().manual_seed(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    n_windows = stream.numel() - cfg.seq_len
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        offsets = torch.randint(0, n_windows, (cfg.batch_size,), generator=gen)
        batch = torch.stack([stream[o : o + cfg.seq_len] for o in offsets.tolist()])
        out = model(input_ids=batch, labels=batch)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(float(out.loss.item()))
        if (step + 1) % log_every == 0 or step + 1 == cfg.steps:
            recent = losses[-log_every:]
            elapsed = time.perf_counter() - start
            log(
                f"step {step + 1}/{cfg.steps} loss {sum(recent) / len(recent):.4f} "
                f"lr {lr_at(step, cfg):.2e} {elapsed:.0f}s ({(step + 1) / elapsed:.2f} it/s)"
            )
    model.eval()
    return losses


def _portable_tokenizer_config(out_dir: Path) -> None:
    # transformers 5 writes its own class name, which 4.x cannot load; the 4.x name loads in both.
    path = out_dir / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_card(out_dir: Path, card: dict[str, Any]) -> None:
    (out_dir / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def main(
    out_dir: str | Path | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    *,
    seq_len: int = 256,
    batch_size: int = 16,
    lr: float = 3e-3,
    threads: int = 2,
    shape: ModelShape | None = None,
    max_files: int | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Build corpus and tokenizer, train the tiny Llama and save both to `out_dir`.

    `steps=0` saves the tokenizer and a seeded random-init model (useful to lay out the files).
    """
    import torch

    from canary.sim import model_dir

    out = Path(out_dir) if out_dir is not None else model_dir()
    cfg = TrainConfig(
        steps=steps,
        seed=seed,
        seq_len=seq_len,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=min(60, max(1, steps // 10)),
        threads=threads,
        max_files=max_files,
        shape=shape or ModelShape(),
    )
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _run(out, cfg, log)
    finally:
        torch.set_num_threads(previous_threads)


def _run(out: Path, cfg: TrainConfig, log: Callable[[str], None]) -> TrainResult:
    import torch
    from transformers import LlamaForCausalLM

    from canary.sim.corpus import build_corpus, train_tokenizer

    t0 = time.perf_counter()
    corpus = build_corpus(max_files=cfg.max_files, seed=cfg.seed)
    tokenizer = train_tokenizer(corpus, vocab_size=cfg.vocab_size)
    stream = token_stream(corpus, tokenizer, cfg.seed, cfg.prose_repeat)
    log(f"corpus {corpus.sha256[:12]} {corpus.stats()} -> {stream.numel()} tokens")

    set_seed(cfg.seed)
    model = LlamaForCausalLM(make_config(tokenizer, cfg.shape))
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {n_params / 1e6:.2f} M parameters")
    loop_start = time.perf_counter()
    losses = train_model(model, stream, cfg, log=log) if cfg.steps > 0 else []
    loop_s = time.perf_counter() - loop_start
    wall = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.do_sample = False
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.model_max_length = cfg.shape.max_position_embeddings
    tokenizer.save_pretrained(out)
    _portable_tokenizer_config(out)
    final = sum(losses[-50:]) / len(losses[-50:]) if losses else None
    write_card(
        out,
        {
            "name": "canary-tiny-llama",
            "recipe": asdict(cfg),
            "corpus_sha256": corpus.sha256,
            "corpus_stats": corpus.stats(),
            "train_tokens": int(stream.numel()),
            "seed": cfg.seed,
            "n_params": n_params,
            "final_loss_last50": final,
            "wall_time_s": round(wall, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
            f"{cfg.threads}",
            "train_loop_steps_per_s": round(len(losses) / loop_s, 3) if losses else None,
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    )
    return TrainResult(out, cfg.steps, wall, final, losses, n_params, corpus.sha256, stream.numel())


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None, help="output dir (default: shipped)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    result = main(
        args.out,
        args.steps,
        args.seed,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        lr=args.lr,
        threads=args.threads,
    )
    print(f"saved {result.out_dir}: final loss {result.final_loss} in {result.wall_time_s:.0f}s")


if __name__ == "__main__":
    _cli()
