"""A store holding a small incident, built by the daemon against the simulated fleet.

Three healthy rounds of the topk suite on the direct pools become the baseline; then corrupt
logits are switched on for the tpu-bf16 pool together with a recorded deploy, and rounds go on
until the daemon fires. The fault stays on, so the alert is open when the report is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from canary.compare.baselines import capture_baseline
from canary.config.fleet import FleetConfig
from canary.daemon.config import DaemonConfig
from canary.daemon.service import Daemon
from canary.records import ResultFilter
from canary.store import Store
from canary.store.changes import record_change

SCHEDULE = {"name": "topk", "suite": "topk", "every": "1h", "select": ["route=direct"]}
FAULT = {"corrupt_logits": {"p": 0.05, "targets": "rare_script", "seed": 7}}
FAULTY_POOL = "tpu-bf16"
CHANGE_ID = "deploy-tpu-7"
HEALTHY_ROUNDS = 3
MAX_FAULTY_ROUNDS = 4


@dataclass(frozen=True)
class Incident:
    store: Store
    change_at: datetime
    fired: list[dict[str, object]]


def build_incident(store: Store, fleet: FleetConfig) -> Incident:
    """Healthy rounds, a baseline, a deploy with a fault, rounds until an alert fires."""
    start = datetime(2026, 11, 24, tzinfo=UTC)
    healthy = Daemon(
        DaemonConfig.model_validate({"sim": True, "schedules": [SCHEDULE]}), fleet, store
    )
    for hour in range(HEALTHY_ROUNDS):
        _tick(healthy, start + timedelta(hours=hour))
    capture_baseline(store, "healthy", ResultFilter(), ("endpoint", "load"))

    config = {"sim": True, "schedules": [SCHEDULE], "alerts": {"baseline": "healthy"}}
    daemon = Daemon(DaemonConfig.model_validate(config), fleet, store)
    admin = fleet.endpoints[0].base_url.removesuffix("/v1")
    httpx.put(f"{admin}/admin/pools/{FAULTY_POOL}/faults", json=FAULT).raise_for_status()
    change_at = datetime.now(UTC)
    record_change(store, CHANGE_ID, "deploy", {"pool": FAULTY_POOL}, change_at, "new kernels")
    fired: list[dict[str, object]] = []
    for hour in range(HEALTHY_ROUNDS, HEALTHY_ROUNDS + MAX_FAULTY_ROUNDS):
        fired += [t for t in _tick(daemon, start + timedelta(hours=hour)) if t["after"] == "firing"]
        if fired:
            break
    return Incident(store, change_at, fired)


def _tick(daemon: Daemon, now: datetime) -> list[dict[str, object]]:
    outcomes = daemon.tick(now)
    assert all(o.status == "done" for o in outcomes), [o.to_dict() for o in outcomes]
    return [t for o in outcomes for r in o.rounds for t in r.transitions]
