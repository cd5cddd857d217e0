"""A fleet with the reference that judges it resolved (`resolve_reference`), in one call."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from canary.config.fleet import FleetConfig
from canary.config.reference import ReferenceConfig, check_reference_endpoint, resolve_reference


def with_resolved_reference(
    fleet: FleetConfig,
    cli: str | None = None,
    *,
    fleet_dir: Path | None = None,
    daemon: ReferenceConfig | None = None,
    daemon_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> FleetConfig:
    """``fleet`` with its `reference` replaced by the one `resolve_reference` picks: what
    `canary run`, `canary daemon` and the pipeline judge its rounds against."""
    reference = resolve_reference(
        cli,
        daemon=daemon,
        daemon_dir=daemon_dir,
        fleet=fleet.reference,
        fleet_dir=fleet_dir,
        environ=environ,
    )
    check_reference_endpoint(reference, (e.name for e in fleet.endpoints))
    return fleet.model_copy(update={"reference": reference})
