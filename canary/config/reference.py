"""The `reference:` section of a fleet (or daemon) file: what endpoints are judged against.

Reference-based checks (top-token agreement, sampling fit, determinism against a reference)
need the model the fleet serves. It is either a local Hugging Face directory (`model`), loaded
through the real transformers path, or a trusted endpoint of the fleet (`endpoint`) whose
stored outputs for the same probes and parameters stand in for it. With no reference, those
metrics are reported as not available, never computed against a model the fleet does not serve.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import model_validator

from canary.config.base import Strict

#: `model:` value naming the small model canary ships (the simulated fleet serves it).
SHIPPED_MODEL = "canary:tiny"

#: `chat_template:` value for the tokenizer's own template (`apply_chat_template`).
MODEL_TEMPLATE = "model"


class ReferenceConfig(Strict):
    """What the fleet's outputs are compared with."""

    model: str | None = None
    """A local model directory (weights + tokenizer), or `canary:tiny` for the shipped model."""
    endpoint: str | None = None
    """A trusted endpoint of this fleet, when no local copy of the model fits."""
    chat_template: str | None = None
    """How chat probes are rendered for the reference: `model` (the tokenizer's own template,
    the default when it has one), a named template (`transcript`, `chatml`, `llama3`), or an
    inline Jinja string. Endpoints may override it with their own `chat_template:`."""
    device: str = "cpu"
    """`cpu`, `cuda` or `cuda:N`."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights and activations; fp32 is the ground truth, others only where fp32 does not fit."""

    @model_validator(mode="after")
    def _one_source(self) -> ReferenceConfig:
        if (self.model is None) == (self.endpoint is None):
            raise ValueError(
                "give exactly one of 'model: DIR' (a local model) or 'endpoint: NAME' "
                "(a trusted endpoint of this fleet)"
            )
        if self.endpoint is not None and self.chat_template is not None:
            raise ValueError("'chat_template' applies to a local 'model', not to an 'endpoint'")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ValueError(f"device {self.device!r}: use 'cpu', 'cuda' or 'cuda:N'")
        return self


#: Environment variable naming the reference model directory (below `--reference`, above files).
REFERENCE_ENV = "CANARY_REFERENCE_MODEL"

#: What `canary run`/`score` print, and report/compare note, when no reference is configured.
NO_REFERENCE_HINT = (
    "reference-based metrics (topk, routing, sampling) not available (no reference): "
    "add 'reference: {model: DIR}' (or {endpoint: NAME}) to the fleet file, "
    f"set ${REFERENCE_ENV}, or pass --reference DIR"
)


def resolve_reference(
    cli: str | None = None,
    *,
    daemon: ReferenceConfig | None = None,
    daemon_dir: Path | None = None,
    fleet: ReferenceConfig | None = None,
    fleet_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ReferenceConfig | None:
    """The one reference that judges a fleet: `--reference DIR` > ${CANARY_REFERENCE_MODEL} >
    the daemon config's `reference:` > the fleet file's > none.

    A directory from the command line or the environment replaces only the configured source:
    `device`, `dtype` and `chat_template` of a configured `model:` reference still apply, since
    they describe the hardware and what the endpoints apply, not which copy of the model is
    read. Relative paths are relative to the file that names them (the working directory for
    the CLI and the environment). A path that holds no model is a `ConfigError`, before any
    request is sent.
    """
    env = os.environ if environ is None else environ
    configured, base = (daemon, daemon_dir) if daemon is not None else (fleet, fleet_dir)
    override = cli if cli else (env.get(REFERENCE_ENV) or "").strip() or None
    where = "--reference" if cli else f"${REFERENCE_ENV}"
    if override is not None:
        keep = configured if configured is not None and configured.model is not None else None
        settings = keep.model_dump(exclude={"model", "endpoint"}) if keep else {}
        resolved = ReferenceConfig(model=_model_path(override, None, where), **settings)
        return resolved
    if configured is None:
        return None
    if configured.model is None:
        return configured
    source = "the daemon config" if daemon is not None else "the fleet file"
    return configured.model_copy(
        update={"model": _model_path(configured.model, base, f"{source}'s reference.model")}
    )


def _model_path(value: str, base: Path | None, where: str) -> str:
    """``value`` as an absolute model directory (or `canary:tiny`), else a one-line error."""
    from canary.errors import ConfigError

    if value == SHIPPED_MODEL:
        return value
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not (path / "config.json").is_file():
        what = "is not a directory" if not path.is_dir() else "has no config.json"
        raise ConfigError(
            f"{where}: {value!r} {what}; give a local Hugging Face model directory "
            f"(weights + tokenizer) or {SHIPPED_MODEL!r} for the shipped model"
        )
    return str(path.resolve())


def check_reference_endpoint(reference: ReferenceConfig | None, endpoints: Iterable[str]) -> None:
    """A `reference: {endpoint: NAME}` from a daemon config must name an endpoint of the fleet
    (the fleet file checks its own)."""
    from canary.errors import ConfigError

    if reference is None or reference.endpoint is None:
        return
    names = sorted(endpoints)
    if reference.endpoint not in names:
        raise ConfigError(
            f"reference endpoint {reference.endpoint!r} is not an endpoint of the fleet "
            f"(known: {', '.join(names)})"
        )


def describe_reference(reference: ReferenceConfig | None) -> str:
    """One short phrase for reports: what the fleet is judged against."""
    if reference is None:
        return "none"
    if reference.endpoint is not None:
        return f"endpoint {reference.endpoint}"
    model = "shipped tiny model" if reference.model == SHIPPED_MODEL else str(reference.model)
    return f"{model} ({reference.dtype}, {reference.device})"
