"""The daemon against the simulated fleet: a fault switched on at a recorded change alerts on the
right cohort, attributed to that change; healthy cohorts stay quiet; switching the fault off
resolves it; a webhook on loopback receives exactly one firing and one resolved message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from canary.alerts.engine import evaluate_run
from canary.alerts.queries import list_alerts
from canary.compare.baselines import capture_baseline
from canary.config.fleet import FleetConfig
from canary.daemon.config import DaemonConfig
from canary.daemon.service import Daemon
from canary.records import ResultFilter
from canary.store import Store, open_store
from canary.store.changes import record_change
from tests.alerts.helpers import Receiver

SCHEDULE = {"name": "topk", "suite": "topk", "every": "1h", "select": ["route=direct"]}
FAULT = {"corrupt_logits": {"p": 0.05, "targets": "rare_script", "seed": 7}}


@pytest.fixture(scope="module")
def fleet() -> Iterator[FleetConfig]:
    from canary.sim.embedded import embedded_fleet

    with embedded_fleet() as config:
        yield config


def admin_url(fleet: FleetConfig) -> str:
    return fleet.endpoints[0].base_url.removesuffix("/v1")


def ticks(daemon: Daemon, start: datetime, hours: range) -> Iterator[list[dict[str, object]]]:
    """One slot per simulated hour; yields the alert transitions of each."""
    for hour in hours:
        outcomes = daemon.tick(start + timedelta(hours=hour))
        assert all(o.status == "done" for o in outcomes), [o.to_dict() for o in outcomes]
        yield [t for o in outcomes for r in o.rounds for t in r.transitions]


def healthy_baseline(store: Store, fleet: FleetConfig, start: datetime, rounds: int) -> None:
    healthy = Daemon(
        DaemonConfig.model_validate({"sim": True, "schedules": [SCHEDULE]}), fleet, store
    )
    for _ in ticks(healthy, start, range(rounds)):
        pass
    capture_baseline(store, "healthy", ResultFilter(), ("endpoint", "load"))


def test_fault_alerts_on_its_cohort_attributed_to_its_change_then_resolves(
    fleet: FleetConfig, sqlite_url: str
) -> None:
    store = open_store(sqlite_url)
    start = datetime(2026, 11, 24, tzinfo=UTC)
    healthy_baseline(store, fleet, start, rounds=4)
    receiver = Receiver()
    try:
        config = DaemonConfig.model_validate(
            {
                "sim": True,
                "schedules": [SCHEDULE],
                "alerts": {"baseline": "healthy"},
                "sinks": [{"type": "webhook", "url": receiver.url}],
            }
        )
        daemon = Daemon(config, fleet, store)
        # A healthy round first: nothing fires against the fleet's own baseline.
        assert next(ticks(daemon, start, range(4, 5))) == []

        httpx.put(f"{admin_url(fleet)}/admin/pools/tpu-bf16/faults", json=FAULT).raise_for_status()
        record_change(store, "deploy-tpu-7", "deploy", {"pool": "tpu-bf16"}, datetime.now(UTC))
        record_change(store, "deploy-gpu-3", "deploy", {"pool": "gpu-fp32"}, datetime.now(UTC))
        fired = []
        for transitions in ticks(daemon, start, range(5, 11)):
            fired += [t for t in transitions if t["after"] == "firing"]
            if fired:
                break
        assert fired, "the corrupted pool never alerted"
        firing = list_alerts(store, status=["firing"])
        assert {a.labels["endpoint"] for a in firing} == {"tpu-bf16"}
        assert "unexpected_script" in {a.metric for a in firing}
        for alert in firing:
            assert alert.change_id == "deploy-tpu-7"  # not the unrelated gpu deploy
            assert alert.evidence_ids and alert.impact is not None
            assert alert.onset_at is not None and alert.fired_at is not None

        last_run = max(r.id for r in store.list_runs(1))
        assert daemon.alerts is not None
        again = evaluate_run(store, last_run, daemon.alerts)
        assert not again.evaluated, "a round is counted by the monitors once"

        httpx.put(
            f"{admin_url(fleet)}/admin/pools/tpu-bf16/faults", json={"corrupt_logits": None}
        ).raise_for_status()
        # Resolving needs half the firing evidence that the rate is back: a few clean rounds.
        for _ in ticks(daemon, start, range(11, 26)):
            if not list_alerts(store, status=["firing", "pending"]):
                break
        assert not list_alerts(store, status=["firing", "pending"])
        resolved = list_alerts(store, status=["resolved"])
        assert {a.labels["endpoint"] for a in resolved} == {"tpu-bf16"}
        daemon.dispatch()

        messages = [r.body for r in receiver.requests]
        assert [m["status"] for m in messages] == ["firing", "resolved"]
        assert {m["group_key"] for m in messages} == {"change:deploy-tpu-7"}
        assert messages[0]["change"]["id"] == "deploy-tpu-7"
        sample = messages[0]["alerts"][0]["samples"][0]
        assert sample["excerpt"] and sample["result_id"] in messages[0]["alerts"][0]["evidence_ids"]
    finally:
        receiver.stop()
