"""Fleet config: endpoints, cohort labels and transport limits, validated strictly."""

from __future__ import annotations

from pathlib import Path

from canary.config.fleet import (
    STANDARD_LABELS,
    EndpointConfig,
    FleetConfig,
    Limits,
    LimitsOverride,
)
from canary.config.loading import load_model_file


def load_fleet(path: str | Path) -> FleetConfig:
    """Load and validate a fleet file (YAML, TOML or JSON)."""
    return load_model_file(FleetConfig, path)


__all__ = [
    "STANDARD_LABELS",
    "EndpointConfig",
    "FleetConfig",
    "Limits",
    "LimitsOverride",
    "load_fleet",
]
