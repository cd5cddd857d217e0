"""The fp16_overflow and prompt_leak faults against their suites, over HTTP, and an alert.

`long_prompt` is answered right by a healthy short-context pool and wrongly (`!!!!`) once one of
its MLP layers overflows in fp16; `prompt_tail` gets no echo of its prompt from a healthy pool
and the prompt's tail first from a leaking detokenizer. The daemon then alerts on the faulted
pool only, attributed to the recorded change that switched the fault on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from canary.alerts.queries import list_alerts
from canary.compare.baselines import capture_baseline
from canary.config.fleet import FleetConfig
from canary.daemon.config import DaemonConfig
from canary.daemon.service import Daemon
from canary.probes import load_suite
from canary.records import ResultFilter
from canary.runner.once import run_once
from canary.scoring import score_stored
from canary.store import Store, open_store
from canary.store.changes import record_change

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet() -> Iterator[FleetConfig]:
    from canary.sim.embedded import embedded_fleet

    with embedded_fleet() as config:
        yield config


def set_faults(fleet: FleetConfig, pool: str, body: dict[str, Any]) -> None:
    base = fleet.endpoints[0].base_url.removesuffix("/v1")
    httpx.put(f"{base}/admin/pools/{pool}/faults", json=body, timeout=60).raise_for_status()


def flagged_rates(
    fleet: FleetConfig, store: Store, suite: str, pools: list[str]
) -> dict[str, dict[str, float]]:
    """One scored round; per pool, the share of results each metric flagged."""
    stored = run_once(
        fleet, load_suite(suite), store, [fleet.endpoint(p) for p in pools], concurrency=8
    )
    assert all(e.ok == e.sent for e in stored.summary.endpoints), stored.summary
    score_stored(store, ResultFilter(run_ids=(stored.run_id,)))
    counts = dict.fromkeys(pools, 0)
    rates: dict[str, dict[str, float]] = {p: {} for p in pools}
    for result in store.results_for_run(stored.run_id):
        counts[result.endpoint] += 1
        for score in result.scores:
            per = rates[result.endpoint]
            per[score.metric] = per.get(score.metric, 0.0) + score.flagged
    return {p: {m: v / counts[p] for m, v in per.items()} for p, per in rates.items()}


def test_long_prompt_is_right_when_healthy_and_bangs_under_fp16_overflow(
    fleet: FleetConfig, sqlite_url: str
) -> None:
    store = open_store(sqlite_url)
    healthy = flagged_rates(fleet, store, "long_prompt", ["gpu-fp32", "long-ctx"])
    assert healthy["gpu-fp32"].get("fixed_fail", 0) == 0
    assert healthy["gpu-fp32"].get("repetition", 0) == 0
    # The long-context pool these prompts are routed to answers worse: the seed's mechanism.
    assert healthy["long-ctx"]["fixed_fail"] >= 0.5
    set_faults(fleet, "gpu-fp32", {"fp16_overflow": {}})
    try:
        broken = flagged_rates(fleet, store, "long_prompt", ["gpu-fp32", "tpu-bf16"])
    finally:
        set_faults(fleet, "gpu-fp32", {"fp16_overflow": None})
    assert broken["gpu-fp32"]["fixed_fail"] >= 0.5
    assert broken["gpu-fp32"]["repetition"] >= 0.5  # the `!!!!!!` runs
    assert broken["tpu-bf16"].get("repetition", 0) == 0


def test_prompt_tail_is_echoed_only_by_the_leaking_pool(
    fleet: FleetConfig, sqlite_url: str
) -> None:
    store = open_store(sqlite_url)
    healthy = flagged_rates(fleet, store, "prompt_tail", ["gpu-fp32", "tpu-bf16"])
    assert healthy["gpu-fp32"].get("prompt_echo", 0) == 0
    assert healthy["tpu-bf16"].get("prompt_echo", 0) == 0
    set_faults(fleet, "gpu-fp32", {"prompt_leak": {}})
    try:
        leaking = flagged_rates(fleet, store, "prompt_tail", ["gpu-fp32", "tpu-bf16"])
    finally:
        set_faults(fleet, "gpu-fp32", {"prompt_leak": None})
    split = sum("split_tail" in p.tags for p in load_suite("prompt_tail").probes)
    assert leaking["gpu-fp32"]["prompt_echo"] == split / len(load_suite("prompt_tail").probes)
    assert leaking["tpu-bf16"].get("prompt_echo", 0) == 0


@pytest.mark.parametrize(
    ("suite", "fault", "pool", "other", "metrics"),
    [
        ("prompt_tail", "prompt_leak", "tpu-bf16", "gpu-fp32", {"prompt_echo"}),
        ("long_prompt", "fp16_overflow", "gpu-fp32", "tpu-bf16", {"repetition", "fixed_fail"}),
    ],
)
def test_fault_alerts_on_its_pool_attributed_to_its_change(
    fleet: FleetConfig,
    sqlite_url: str,
    suite: str,
    fault: str,
    pool: str,
    other: str,
    metrics: set[str],
) -> None:
    store = open_store(sqlite_url)
    start = datetime(2026, 11, 24, tzinfo=UTC)
    schedule = {"name": "probe", "suite": suite, "every": "1h", "select": ["context=short"]}

    def ticks(daemon: Daemon, hours: range) -> Iterator[list[dict[str, object]]]:
        for hour in hours:
            outcomes = daemon.tick(start + timedelta(hours=hour))
            assert all(o.status == "done" for o in outcomes), [o.to_dict() for o in outcomes]
            yield [t for o in outcomes for r in o.rounds for t in r.transitions]

    base = DaemonConfig.model_validate({"sim": True, "schedules": [schedule]})
    for _ in ticks(Daemon(base, fleet, store), range(2)):
        pass
    capture_baseline(store, "healthy", ResultFilter(), ("endpoint", "load"))
    config = DaemonConfig.model_validate(
        {"sim": True, "schedules": [schedule], "alerts": {"baseline": "healthy"}}
    )
    daemon = Daemon(config, fleet, store)
    set_faults(fleet, pool, {fault: {}})
    try:
        record_change(store, "deploy-9", "deploy", {"pool": pool}, datetime.now(UTC))
        record_change(store, "cfg-2", "deploy", {"pool": other}, datetime.now(UTC))
        fired = []
        for transitions in ticks(daemon, range(2, 6)):
            fired += [t for t in transitions if t["after"] == "firing"]
            if fired:
                break
    finally:
        set_faults(fleet, pool, {fault: None})
    assert fired, f"the {fault} pool never alerted"
    firing = list_alerts(store, status=["firing"])
    assert {a.labels["endpoint"] for a in firing} == {pool}
    assert metrics & {a.metric for a in firing}
    assert all(a.change_id == "deploy-9" for a in firing)
