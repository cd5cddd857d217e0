"""Loading the served model once per distinct engine setting, shared by the pools that match.

A setting is (precision, RoPE scaling, weights): `weights` picks the checkpoint as trained, a
copy quantized to 8 or 4 bits at load time (`canary.sim.quantize`), or the substitute
checkpoint (`canary.sim.train_substitute`), which shares the served model's tokenizer.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from canary.errors import ConfigError
from canary.sim.fleetconfig import WEIGHTS, Precision, RopeScaling, Weights
from canary.sim.quantize import DEFAULT_GROUP_SIZE

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: Bits of the quantized weight settings.
_BITS: dict[str, Literal[4, 8]] = {"int8": 8, "int4": 4}


def rope_parameters(
    base: dict[str, Any], scaling: RopeScaling, max_positions: int
) -> dict[str, Any]:
    """transformers 5.x `rope_parameters` for a scaled window over the trained `rope_theta`."""
    params: dict[str, Any] = {
        "rope_type": scaling.type,
        "factor": float(scaling.factor),
        "rope_theta": base.get("rope_theta", 10000.0),
    }
    if scaling.type == "yarn":
        params["original_max_position_embeddings"] = max_positions
    return params


#: What identifies one loaded model: precision, RoPE, weights and (for int8/int4) group size.
ModelKey = tuple[Precision, RopeScaling | None, Weights, int | None]


class ModelStore:
    """Models keyed by (precision, RoPE, weights): pools with the same setting share one object.

    `substitute` is the checkpoint served as `weights: substitute`; none means the shipped one
    (`canary/sim/model_substitute`). It must have the served model's architecture and vocabulary,
    since it is decoded with the served model's tokenizer.
    """

    def __init__(self, path: Path, substitute: Path | None = None) -> None:
        from transformers import AutoTokenizer

        from canary.sim import quiet_transformers

        quiet_transformers()
        if not (path / "config.json").exists():
            raise ConfigError(
                f"{path}: no model there; train one with `canary sim train` or set 'model:'"
            )
        self.path = path
        if substitute is None:
            from canary.sim.train_substitute import substitute_dir

            substitute = substitute_dir()
        self.substitute = substitute
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path)
        self._models: dict[ModelKey, PreTrainedModel] = {}
        self._lock = threading.Lock()
        self._token_strings: list[str] | None = None

    def get(
        self,
        precision: Precision,
        rope: RopeScaling | None,
        weights: Weights = "original",
        group_size: int = DEFAULT_GROUP_SIZE,
    ) -> PreTrainedModel:
        """The model for this setting, loading it on first use (thread-safe).

        `group_size` matters only to `int8` and `int4`; the other weights share one copy.
        """
        key: ModelKey = (precision, rope, weights, group_size if weights in _BITS else None)
        with self._lock:
            if key not in self._models:
                self._models[key] = self._load(precision, rope, weights, group_size)
            return self._models[key]

    def _load(
        self, precision: Precision, rope: RopeScaling | None, weights: Weights, group_size: int
    ) -> PreTrainedModel:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        from canary.sim.quantize import quantize_model

        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        source = self._substitute_dir() if weights == "substitute" else self.path
        config = AutoConfig.from_pretrained(source)
        if rope is not None:
            base = dict(getattr(config, "rope_parameters", None) or {})
            config.rope_parameters = rope_parameters(base, rope, config.max_position_embeddings)
            config.max_position_embeddings = int(config.max_position_embeddings * rope.factor)
        # Quantize the fp32 weights, then cast: a bf16 int4 pool rounds the dequantized grid.
        model = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=torch.float32)
        if weights in _BITS:
            quantize_model(model, _BITS[weights], group_size)
        torch.nn.Module.to(model, dtype)
        model.eval()
        model.requires_grad_(False)
        from canary.sim import tune_torch_threads

        tune_torch_threads(model)
        return model

    def _substitute_dir(self) -> Path:
        import json

        path = self.substitute
        if not (path / "config.json").exists():
            raise ConfigError(
                f"{path}: no substitute checkpoint there; make one with "
                "`python -m canary.sim.train_substitute`"
            )
        served = json.loads((self.path / "config.json").read_text())
        other = json.loads((path / "config.json").read_text())
        for key in ("model_type", "vocab_size", "hidden_size", "num_hidden_layers"):
            if served.get(key) != other.get(key):
                raise ConfigError(
                    f"{path}: the substitute's {key} is {other.get(key)!r}, the served model's "
                    f"{served.get(key)!r}; a substitute must share the served tokenizer and shape"
                )
        return path

    @property
    def vocab_size(self) -> int:
        return int(self.get("fp32", None).get_output_embeddings().weight.shape[0])

    def token_strings(self) -> list[str]:
        """`tokenizer.decode([id])` for every id of the output layer."""
        if self._token_strings is None:
            self._token_strings = [str(self.tokenizer.decode([i])) for i in range(self.vocab_size)]
        return self._token_strings


class _WeightsState(Protocol):
    weights: Weights
    group_size: int


def weights_setting(body: dict[str, Any], current: _WeightsState) -> tuple[Weights, int]:
    """`weights` and `group_size` of an admin update over the pool's current ones.

    Raises ValueError with a one-line message naming the field, which the admin API returns.
    """
    weights = body.get("weights", current.weights)
    if weights not in WEIGHTS:
        raise ValueError(
            f"weights: {weights!r} is not one of " + ", ".join(repr(w) for w in WEIGHTS)
        )
    group_size = body.get("group_size", current.group_size)
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size: {group_size!r} is not a whole number of at least 1")
    if group_size > 4096:
        raise ValueError(f"group_size: {group_size} is above 4096; use 32, 64 or 128")
    return weights, group_size
