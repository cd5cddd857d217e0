"""Loading the served model once per distinct engine setting, shared by the pools that match."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canary.errors import ConfigError
from canary.sim.fleetconfig import Precision, RopeScaling

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


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


class ModelStore:
    """Models keyed by (precision, RoPE scaling): pools with the same setting share one object."""

    def __init__(self, path: Path) -> None:
        from transformers import AutoTokenizer

        from canary.sim import quiet_transformers

        quiet_transformers()
        if not (path / "config.json").exists():
            raise ConfigError(
                f"{path}: no model there; train one with `canary sim train` or set 'model:'"
            )
        self.path = path
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path)
        self._models: dict[tuple[Precision, RopeScaling | None], PreTrainedModel] = {}
        self._lock = threading.Lock()
        self._token_strings: list[str] | None = None

    def get(self, precision: Precision, rope: RopeScaling | None) -> PreTrainedModel:
        """The model for this setting, loading it on first use (thread-safe)."""
        key = (precision, rope)
        with self._lock:
            if key not in self._models:
                self._models[key] = self._load(precision, rope)
            return self._models[key]

    def _load(self, precision: Precision, rope: RopeScaling | None) -> PreTrainedModel:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        config = AutoConfig.from_pretrained(self.path)
        if rope is not None:
            base = dict(getattr(config, "rope_parameters", None) or {})
            config.rope_parameters = rope_parameters(base, rope, config.max_position_embeddings)
            config.max_position_embeddings = int(config.max_position_embeddings * rope.factor)
        model = AutoModelForCausalLM.from_pretrained(self.path, config=config, dtype=dtype)
        model.eval()
        model.requires_grad_(False)
        from canary.sim import tune_torch_threads

        tune_torch_threads(model)
        return model

    @property
    def vocab_size(self) -> int:
        return int(self.get("fp32", None).get_output_embeddings().weight.shape[0])

    def token_strings(self) -> list[str]:
        """`tokenizer.decode([id])` for every id of the output layer."""
        if self._token_strings is None:
            self._token_strings = [str(self.tokenizer.decode([i])) for i in range(self.vocab_size)]
        return self._token_strings
