"""Adaptive probing in a slot: the allocation from the monitors' states and the endpoints'
limits (`canary.daemon.adaptive.allocate`), and the rounds it makes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from canary.config.fleet import EndpointConfig, FleetConfig
from canary.daemon.config import AdaptiveConfig, LoadShape
from canary.store import Store


def slot_allocation(
    store: Store,
    fleet: FleetConfig,
    adaptive: AdaptiveConfig,
    period_s: float,
    probes: int,
    loads: Sequence[LoadShape],
    endpoints: Sequence[EndpointConfig],
) -> dict[tuple[str, str], int]:
    """Repeats per (endpoint, load): pending cohorts get more, quiet ones pay for it."""
    from canary.daemon.adaptive import Unit, allocate, repeat_cap, unit_status
    from canary.store.alerts import open_monitor_labels

    statuses = open_monitor_labels(store)
    units = [
        Unit(
            endpoint.name,
            load.name,
            load.repeat,
            repeat_cap(
                load.repeat,
                probes,
                period_s,
                fleet.limits_for(endpoint).rate_limit_rps,
                headroom=adaptive.rate_headroom,
            ),
            unit_status(statuses, endpoint.name, load.name),
        )
        for load in loads
        for endpoint in endpoints
    ]
    return allocate(units, adaptive.max_boost)


def rounds_of(
    endpoints: Sequence[EndpointConfig],
    load: LoadShape,
    allocated: Mapping[tuple[str, str], int] | None,
) -> list[tuple[int, list[EndpointConfig]]]:
    """A load's rounds in a slot: (repeats, endpoints). One round with the configured repeats;
    with adaptive probing, one per repeat count the allocation gave (each cohort still gets
    exactly one round a slot, so the monitors' round budget is unchanged)."""
    if allocated is None:
        return [(load.repeat, list(endpoints))]
    groups: dict[int, list[EndpointConfig]] = {}
    for endpoint in endpoints:
        groups.setdefault(allocated.get((endpoint.name, load.name), load.repeat), []).append(
            endpoint
        )
    return sorted(groups.items(), key=lambda item: -item[0])
