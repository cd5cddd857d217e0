"""Tool calls end to end over HTTP: the `tool_calls` suite against the simulated fleet's chat
API, stored, scored, and watched by the daemon.

Healthy pools decode every forced call by guided decoding, so the detector must stay quiet on
them; the `tool_call_format` fault, switched through the admin API like a deploy, breaks the
arguments in the tool parser, and the daemon must alert on that pool, attributed to the change
that switched it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from canary.alerts.queries import list_alerts
from canary.compare.baselines import capture_baseline
from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.daemon.config import DaemonConfig
from canary.daemon.service import Daemon
from canary.probes import load_suite
from canary.records import ResultFilter
from canary.runner.once import run_once
from canary.scoring import score_stored
from canary.sim.embedded import default_sim_fleet_path
from canary.sim.fleetconfig import load_sim_fleet
from canary.sim.server import RunningFleet, running_fleet
from canary.store import Store, open_store
from canary.store.changes import record_change

pytestmark = pytest.mark.slow

POOLS = ("gpu-fp32", "tpu-bf16")
TOOL_METRICS = (
    "tool_call_missed",
    "tool_call_unexpected",
    "tool_call_finish_mismatch",
    "tool_call_name_mismatch",
    "tool_call_schema_invalid",
    "tool_call_id_invalid",
    "tool_call_arguments_mismatch",
)
SCHEDULE = {"name": "tools", "suite": "tool_calls", "every": "1h", "select": ["api=chat"]}
FAULT = {"tool_call_format": {"p": 1.0, "variant": "truncate"}}


@dataclass
class Fleet:
    running: RunningFleet
    config: FleetConfig

    def faults(self, pool: str, body: dict[str, Any]) -> None:
        url = f"{self.running.base_url}/admin/pools/{pool}/faults"
        httpx.put(url, json=body).raise_for_status()


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """The shipped fleet, each short pool reached through its chat API (tools need chat)."""
    sim = load_sim_fleet(default_sim_fleet_path())
    with running_fleet(sim) as running:
        endpoints = [
            EndpointConfig(
                name=pool,
                base_url=running.pool_url(pool),
                flavour="openai-chat",
                model=sim.model_name,
                labels={"pool": pool, "api": "chat", "route": "direct", "region": "local"},
            )
            for pool in POOLS
        ]
        yield Fleet(running, FleetConfig(defaults=Limits(concurrency=16), endpoints=endpoints))


def tool_round(fleet: Fleet, store: Store) -> dict[str, dict[str, list[bool]]]:
    """One round of the suite to both pools, scored; per pool, each tool metric's flags."""
    stored = run_once(
        fleet.config, load_suite("tool_calls"), store, fleet.config.endpoints, concurrency=8
    )
    assert all(e.ok == e.sent for e in stored.summary.endpoints), stored.summary
    score_stored(store, ResultFilter(run_ids=(stored.run_id,)))
    flags: dict[str, dict[str, list[bool]]] = {pool: {} for pool in POOLS}
    for result in store.results_for_run(stored.run_id):
        for score in result.scores:
            if score.metric in TOOL_METRICS:
                flags[result.endpoint].setdefault(score.metric, []).append(score.flagged)
    return flags


def test_healthy_pools_are_quiet_and_the_fault_is_flagged_on_its_pool(
    fleet: Fleet, sqlite_url: str
) -> None:
    store = open_store(sqlite_url)
    healthy = tool_round(fleet, store)
    for pool in POOLS:
        scored = healthy[pool]
        assert len(scored["tool_call_schema_invalid"]) >= 15, scored  # the forced calls
        assert not any(f for metric in scored.values() for f in metric), (pool, scored)
    fleet.faults("gpu-fp32", FAULT)
    try:
        broken = tool_round(fleet, store)
    finally:
        fleet.faults("gpu-fp32", {"tool_call_format": None})
    schema = broken["gpu-fp32"]["tool_call_schema_invalid"]
    assert all(schema), schema  # every call lost its closing brace
    assert not any(broken["tpu-bf16"]["tool_call_schema_invalid"])
    assert not any(broken["gpu-fp32"]["tool_call_missed"])  # the calls still came
    invalid = [
        s.evidence
        for r in store.results_in_window({"endpoint": "gpu-fp32"})
        for s in r.scores
        if s.metric == "tool_call_schema_invalid" and s.flagged
    ]
    assert invalid and all(e and e["error"] == "arguments are not valid JSON" for e in invalid)
    stored = [
        c for r in store.results_in_window({"endpoint": "gpu-fp32"}) for c in r.tool_calls or ()
    ]
    assert stored and all(c.id and c.id.startswith("call_") and c.problem is None for c in stored)
    assert any(c.arguments and not c.arguments.endswith("}") for c in stored)  # read back as sent


def ticks(daemon: Daemon, start: datetime, hours: range) -> Iterator[list[dict[str, object]]]:
    for hour in hours:
        outcomes = daemon.tick(start + timedelta(hours=hour))
        assert all(o.status == "done" for o in outcomes), [o.to_dict() for o in outcomes]
        yield [t for o in outcomes for r in o.rounds for t in r.transitions]


def test_the_daemon_alerts_on_the_faulty_pool_attributed_to_its_change(
    fleet: Fleet, sqlite_url: str
) -> None:
    store = open_store(sqlite_url)
    start = datetime(2026, 11, 24, tzinfo=UTC)
    baseline = Daemon(
        DaemonConfig.model_validate({"sim": True, "schedules": [SCHEDULE]}), fleet.config, store
    )
    for _ in ticks(baseline, start, range(2)):
        pass
    capture_baseline(store, "healthy", ResultFilter(), ("endpoint", "load"))
    config = DaemonConfig.model_validate(
        {"sim": True, "schedules": [SCHEDULE], "alerts": {"baseline": "healthy"}}
    )
    daemon = Daemon(config, fleet.config, store)
    assert next(ticks(daemon, start, range(2, 3))) == []  # healthy: nothing fires

    fleet.faults("tpu-bf16", FAULT)
    try:
        record_change(store, "deploy-parser-9", "deploy", {"pool": "tpu-bf16"}, datetime.now(UTC))
        record_change(store, "deploy-gpu-3", "deploy", {"pool": "gpu-fp32"}, datetime.now(UTC))
        fired = []
        for transitions in ticks(daemon, start, range(3, 8)):
            fired += [t for t in transitions if t["after"] == "firing"]
            if fired:
                break
    finally:
        fleet.faults("tpu-bf16", {"tool_call_format": None})
    assert fired, "the broken tool parser never alerted"
    firing = list_alerts(store, status=["firing"])
    assert {a.labels["endpoint"] for a in firing} == {"tpu-bf16"}
    assert "tool_call_schema_invalid" in {a.metric for a in firing}
    assert {a.change_id for a in firing} == {"deploy-parser-9"}
    assert list_alerts(store, change_id="deploy-parser-9")
    assert not list_alerts(store, change_id="deploy-gpu-3")
