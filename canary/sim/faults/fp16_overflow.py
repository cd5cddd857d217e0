"""fp16 overflow: one decoder layer's MLP computed in float16 by a "fused" kernel (vLLM#13035).

The kernel computes `down(silu(gate(x)) * up(scale * x))` in float16 with a static pre-scale
on the up branch (as an fp8-calibrated kernel keeps small products out of fp16's subnormals) and
divides the result by the scale. Where the scaled inner product passes fp16's largest finite
value (65504) it becomes inf; the residual carries it to the next RMSNorm, where
`inf * rsqrt(inf)` is NaN, and attention spreads the NaN to every later position, so every
logit after it is NaN. Only inputs whose
activations at that layer are large overflow: the fault is content-dependent, not always on.

The model object is shared by the pools with the same precision and RoPE setting, so the hook is
installed once per model and acts only while a thread has entered `fp16_forward` with settings:
each pool's worker thread does all of that pool's torch work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from canary.sim.fleetconfig import Fp16Overflow

FP16_MAX = float(torch.finfo(torch.float16).max)
_HOOKED = "_canary_fp16_overflow_hooked"
_active = threading.local()


def check_layer(model: Any, settings: Fp16Overflow) -> None:
    """Refuse a layer the model does not have (a config error, not a silent no-op)."""
    n = len(model.model.layers)
    if settings.layer >= n:
        raise ValueError(f"fp16_overflow.layer: {settings.layer} is out of range (model has {n})")
    mlp = model.model.layers[settings.layer].mlp
    if not all(hasattr(getattr(mlp, p, None), "weight") for p in ("gate_proj", "up_proj")):
        raise ValueError("fp16_overflow: this pool's weights have no plain MLP projections")


def install(model: Any) -> None:
    """Hook every decoder layer's MLP of `model` once; the hooks do nothing until activated."""
    if getattr(model, _HOOKED, False):
        return
    for index, layer in enumerate(model.model.layers):
        layer.mlp.register_forward_hook(_hook(index))
    setattr(model, _HOOKED, True)


@contextmanager
def fp16_forward(settings: Fp16Overflow | None) -> Iterator[None]:
    """Within the block, this thread's forward passes take the fp16 path at `settings.layer`."""
    previous = getattr(_active, "settings", None)
    _active.settings = settings
    try:
        yield
    finally:
        _active.settings = previous


def fp16_mlp(mlp: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
    """The buggy kernel: a Llama MLP in float16 with its up branch pre-scaled, then unscaled.

    The scale is linear through `silu(gate) * up` and `down`, so where nothing overflows the
    result is the fp32 one up to fp16 rounding; where `scale * inner` passes 65504 it is inf.
    """
    half = x.to(torch.float16)
    gate = torch.nn.functional.linear(half, mlp.gate_proj.weight.to(torch.float16))
    up = torch.nn.functional.linear(half * scale, mlp.up_proj.weight.to(torch.float16))
    inner = mlp.act_fn(gate) * up
    out = torch.nn.functional.linear(inner, mlp.down_proj.weight.to(torch.float16))
    return out.to(x.dtype) / scale


def _hook(index: int) -> Any:
    def hook(module: Any, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        settings = getattr(_active, "settings", None)
        if settings is None or settings.layer != index:
            return None
        return fp16_mlp(module, args[0], settings.scale)

    return hook
