"""What a check needs besides the fleet: the reference model and the border inputs.

The fleet's `reference:` decides: a local model is loaded (once per process, shared with
scoring); a trusted endpoint turns `--against reference` into `--against endpoint:NAME`.
Border inputs come from a suite written by `canary suite border`; one generated from another
reference is not used (its recorded choices belong to that model).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canary.config import FleetConfig
    from canary.reference import ReferenceModel


def trusted_side(fleet: FleetConfig, against: str) -> tuple[str, ReferenceModel | None]:
    """The `against` to use and the local reference model, if the fleet configures one."""
    reference = fleet.reference
    if reference is None or (reference.model is None and reference.endpoint is None):
        if against == "reference":
            from canary.errors import ConfigError

            raise ConfigError(
                "--against reference: the fleet has no `reference:`; set one (a local model "
                "or a trusted endpoint), or use --against endpoint:NAME or baseline:NAME"
            )
        return against, None
    if reference.model is None:
        return (f"endpoint:{reference.endpoint}" if against == "reference" else against), None
    from canary.scoring.reference import shared_reference_model

    model = shared_reference_model(reference.model, reference.device, reference.dtype)
    return against, model


def default_border_path() -> Path:
    """The shipped border suite (`probes/border.yaml`)."""
    from canary.resources import resource_dir

    return resource_dir("probes") / "border.yaml"


def border_inputs(
    path: Path | None, model: ReferenceModel | None, notes: list[str]
) -> list[tuple[str, str]]:
    """(prompt, reference choice) pairs from a border suite made from this reference model."""
    from canary.probes import load_suite

    where = path or default_border_path()
    if model is None or not where.is_file():
        if path is not None:
            notes.append(f"border suite {where} not used: no local reference model")
        return []
    suite = load_suite(where)
    made_by = {str(p.expect.get("reference", "")) for p in suite.probes}
    if made_by != {model.fingerprint[:16]}:
        notes.append(f"border suite {where.name} was generated from another reference; skipped")
        return []
    return [
        (p.as_prompt(), str(p.expect["reference_choice"]))
        for p in suite.probes
        if "reference_choice" in p.expect
    ]
