"""A quantized build of a local checkpoint, written as an ordinary Hugging Face directory.

`canary identity` is meant to catch an endpoint that serves a 4-bit build where the fp32 model
was promised. To check that on a real server (`transformers serve`, vLLM, ...) the server needs
such a build to load: this writes the checkpoint's decoder Linear weights through the same
symmetric per-group round-to-nearest grid the simulated fleet's `weights: int4 | int8` pools use
(`canary.sim.quantize`), dequantized back to the checkpoint's float dtype, with its tokenizer,
chat template and generation config, so any server loads it like the original.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from canary.sim.quantize import DEFAULT_GROUP_SIZE, Bits

__all__ = ["CARD_NAME", "QuantizedBuild", "export_quantized", "resolve_model"]

#: The provenance file written next to the weights: what was quantized, how, from what.
CARD_NAME = "canary_quantized.json"


@dataclass(frozen=True)
class QuantizedBuild:
    """What `export_quantized` wrote, and from what (also written to `CARD_NAME`)."""

    out_dir: str
    source: str
    bits: int
    group_size: int
    embeddings: bool
    linears: int
    """How many Linear weights (plus the embedding, with `embeddings`) were quantized."""


def resolve_model(model: str | Path) -> Path:
    """`canary:tiny` as the shipped model's directory; any other value as a local model
    directory, or a one-line `ConfigError` naming what to give instead."""
    from canary.config.reference import SHIPPED_MODEL
    from canary.errors import ConfigError
    from canary.sim import model_dir

    if str(model) == SHIPPED_MODEL:
        return model_dir()
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"--model {str(model)!r}: no config.json there; give a local Hugging Face model "
            f"directory or {SHIPPED_MODEL!r}"
        )
    return path.resolve()


def export_quantized(
    model: str | Path,
    out_dir: Path,
    *,
    bits: Bits = 4,
    group_size: int = DEFAULT_GROUP_SIZE,
    embeddings: bool = False,
    overwrite: bool = False,
) -> QuantizedBuild:
    """Load `model` (a directory or `canary:tiny`), quantize it and `save_pretrained` it to
    `out_dir` with its tokenizer. An existing non-empty `out_dir` is refused unless
    `overwrite`, so a build is never silently mixed with the files of another."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from canary.errors import ConfigError
    from canary.sim import quiet_transformers
    from canary.sim.quantize import quantize_model

    if bits not in (4, 8):
        raise ConfigError(f"--bits {bits}: use 4 or 8")
    if group_size < 1:
        raise ConfigError(f"--group-size {group_size}: use a positive number of columns")
    source = resolve_model(model)
    out = out_dir.expanduser()
    if out.resolve() == source:
        raise ConfigError(f"--out {out}: that is the source checkpoint; write the build elsewhere")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"--out {out}: the directory is not empty; pick another or --overwrite")
    quiet_transformers()
    loaded = AutoModelForCausalLM.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    changed = quantize_model(loaded, bits, group_size, embeddings=embeddings)
    out.mkdir(parents=True, exist_ok=True)
    loaded.save_pretrained(out)
    tokenizer.save_pretrained(out)
    build = QuantizedBuild(str(out), str(source), bits, group_size, embeddings, changed)
    (out / CARD_NAME).write_text(json.dumps(asdict(build), indent=2) + "\n")
    return build
