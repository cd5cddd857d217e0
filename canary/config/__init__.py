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
    """Load and validate a fleet file (YAML, TOML or JSON).

    Every endpoint's `api_key_env` is registered as a secret here, before any request, so a
    key a server echoes back (or a library logs) is scrubbed from what is stored and printed.
    """
    from canary.sanitize import register_secret_envs

    fleet = load_model_file(FleetConfig, path, "fleet file")
    register_secret_envs(endpoint.api_key_env for endpoint in fleet.endpoints)
    return fleet


__all__ = [
    "STANDARD_LABELS",
    "EndpointConfig",
    "FleetConfig",
    "Limits",
    "LimitsOverride",
    "load_fleet",
]
