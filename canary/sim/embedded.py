"""The simulated fleet started in-process, seen as an ordinary fleet config.

`canary run --sim` and `canary demo` use this so a fresh machine has something real to probe:
the fleet serves the shipped model over loopback HTTP, and canary reaches it through the same
adapters it uses for production endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.config.reference import SHIPPED_MODEL, ReferenceConfig
from canary.resources import resource_dir
from canary.sim.fleetconfig import SimFleetConfig, load_sim_fleet

DEFAULT_SIM_FLEET = "sim-fleet.yaml"


def default_sim_fleet_path() -> Path:
    return resource_dir("config") / DEFAULT_SIM_FLEET


def fleet_config_for(sim: SimFleetConfig, base_url: str) -> FleetConfig:
    """Endpoints for the front door (chat, as users reach it) and each pool (completions)."""
    endpoints = [
        EndpointConfig(
            name="front-door",
            base_url=f"{base_url}/v1",
            flavour="openai-chat",
            model=sim.model_name,
            labels={
                "route": "front-door",
                "region": "local",
                "pools": "+".join(p.name for p in sim.pools if p.context != "long"),
            },
        )
    ]
    for pool in sim.pools:
        endpoints.append(
            EndpointConfig(
                name=pool.name,
                base_url=f"{base_url}/pools/{pool.name}/v1",
                flavour="openai-completions",
                model=sim.model_name,
                labels={
                    "pool": pool.name,
                    "precision": pool.precision,
                    "context": pool.context,
                    "route": "direct",
                    "region": "local",
                },
            )
        )
    # The simulated fleet serves the shipped model: it is its own reference.
    return FleetConfig(
        defaults=Limits(concurrency=32, timeout_s=60),
        endpoints=endpoints,
        reference=ReferenceConfig(model=SHIPPED_MODEL),
    )


@contextmanager
def embedded_fleet(path: str | Path | None = None) -> Iterator[FleetConfig]:
    """Serve the simulated fleet on a free loopback port until the block exits."""
    from canary.sim.server import running_fleet

    sim = load_sim_fleet(path or default_sim_fleet_path())
    with running_fleet(sim, port=0) as running:
        yield fleet_config_for(sim, running.base_url)
