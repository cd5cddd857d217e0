"""Weight quantization of the served model, and how far a variant's next-token law moves.

A pool with `weights: int8` or `int4` serves a copy of the model whose decoder Linear weights
went through symmetric per-group absmax round-to-nearest quantization (GPTQ's `sym=True` grid
without its error feedback; llama.cpp's Q8_0 / Q4_0 blocks), then back to floats. The
dequantized weights are stored as ordinary fp32 (or bf16) tensors: the point is the numerical
effect a quantized deployment has on the outputs, not the memory it saves.

Embeddings: the tiny model ties its input embedding to its output head, so one matrix is both.
GPTQ and AWQ leave `embed_tokens` and `lm_head` unquantized by default, and llama.cpp keeps the
output head at 6 bits or more even in its 4-bit mixes; this module does the same (the tied
matrix stays as trained) unless `embeddings=True`, which quantizes it to 8 bits as llama.cpp's
Q8_0 token embedding does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Bits = Literal[4, 8]
#: Group size of the shipped pools: 32 input columns share one scale, llama.cpp's block size
#: for Q4_0 / Q8_0 (GPTQ and AWQ default to 128). Chosen for realism, measured on the shipped
#: model against fp32: int4 at 32 gives mean KL 0.016 / 90.4 % same top-1 where a real 4-bit
#: server measured 0.013 / 90.5 %; 128 gives 0.025 with twice the p99 (0.10); see
#: `tests/sim/test_quantized_pools.py`.
DEFAULT_GROUP_SIZE = 32


def quantize_dequantize(weight: torch.Tensor, bits: Bits, group_size: int) -> torch.Tensor:
    """`weight` rounded to a symmetric `bits`-bit grid, one absmax scale per `group_size` inputs.

    Groups run along the last (input) dimension, as GPTQ and llama.cpp group a Linear's rows; a
    trailing group shorter than `group_size` gets its own scale. Each value moves by at most half
    its group's step `absmax / (2**(bits-1) - 1)`.
    """
    import torch

    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, not {group_size}")
    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().to(torch.float32)
    cols = w.shape[-1]
    pad = (-cols) % group_size
    flat = w.reshape(-1, cols)
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    groups = flat.reshape(flat.shape[0], -1, group_size)
    scale = groups.abs().amax(dim=-1, keepdim=True) / qmax
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(groups / safe), -qmax, qmax)
    out = (q * scale).reshape(flat.shape[0], -1)[:, :cols]
    return out.reshape(w.shape).to(weight.dtype)


def quantize_model(
    model: PreTrainedModel, bits: Bits, group_size: int, *, embeddings: bool = False
) -> int:
    """Quantize every `nn.Linear` weight of `model` in place; returns how many were changed.

    The output head is skipped when it is tied to the input embedding (or `embeddings` is off),
    as GPTQ/AWQ skip `lm_head`; with `embeddings=True` the embedding goes to 8 bits.
    """
    import torch

    head = model.get_output_embeddings()
    embed = model.get_input_embeddings()
    tied_to = embed.weight if embed is not None else None
    changed = 0
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, torch.nn.Linear):
                continue
            if module is head or module.weight is tied_to:
                continue
            module.weight.copy_(quantize_dequantize(module.weight, bits, group_size))
            changed += 1
        if embeddings and isinstance(tied_to, torch.Tensor):
            tied_to.copy_(quantize_dequantize(tied_to, 8, group_size))
            changed += 1
    return changed


@dataclass(frozen=True)
class Divergence:
    """How a variant's next-token distribution differs from a reference's, position by position."""

    positions: int
    mean_kl: float
    """Mean KL(reference ‖ variant) in nats."""
    p99_kl: float
    same_top1: float
    """Share of positions where both models' most likely token is the same (0 to 1)."""

    def as_dict(self) -> dict[str, float | int]:
        return {
            "positions": self.positions,
            "mean_kl": round(self.mean_kl, 6),
            "p99_kl": round(self.p99_kl, 6),
            "same_top1": round(self.same_top1, 4),
        }


def divergence(
    reference: PreTrainedModel,
    variant: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    continuation_tokens: int = 48,
) -> Divergence:
    """KL and same-top-1 at every position of the reference's greedy continuation of `prompts`.

    The reference writes each continuation; both models then score prompt + continuation in one
    forward pass, so the variant is compared on the text a healthy server would have produced
    (the way llama.cpp's `--kl-divergence` compares on a fixed text).
    """
    import torch

    kls: list[torch.Tensor] = []
    same: list[torch.Tensor] = []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([tokenizer(prompt)["input_ids"]])
            out = reference.generate(  # type: ignore[operator]
                ids,
                max_new_tokens=continuation_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            start = ids.shape[1] - 1
            ref = torch.log_softmax(reference(out).logits[0, start:-1].float(), dim=-1)
            var = torch.log_softmax(variant(out).logits[0, start:-1].float(), dim=-1)
            kls.append((ref.exp() * (ref - var)).sum(-1).clamp_min(0))
            same.append(ref.argmax(-1) == var.argmax(-1))
    kl = torch.cat(kls).double()
    return Divergence(
        positions=int(kl.numel()),
        mean_kl=float(kl.mean()),
        p99_kl=float(torch.quantile(kl, 0.99)),
        same_top1=float(torch.cat(same).double().mean()),
    )
