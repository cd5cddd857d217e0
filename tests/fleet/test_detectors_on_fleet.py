"""Each detector on the simulated fleet, each fault on and off, over real HTTP.

The faults are real mechanisms in the serving path (see canary/sim/faults); they are switched
through the fleet's admin API, as a deploy would switch them. The detector meant for a fault must
flag it; the other pools, healthy, must stay quiet.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from canary.config.fleet import FleetConfig
from canary.probes import load_suite
from canary.records import ResultFilter
from canary.runner.once import run_once
from canary.scoring import score_stored
from canary.sim.embedded import default_sim_fleet_path, fleet_config_for
from canary.sim.fleetconfig import load_sim_fleet
from canary.sim.router import unit_hash
from canary.sim.server import RunningFleet, running_fleet
from canary.store import Store, open_store
from canary.store.impact import session_impact

pytestmark = pytest.mark.slow


@dataclass
class Fleet:
    running: RunningFleet
    config: FleetConfig

    def faults(self, pool: str, body: dict[str, Any]) -> None:
        response = httpx.put(f"{self.running.base_url}/admin/pools/{pool}/faults", json=body)
        response.raise_for_status()

    def router(self, body: dict[str, Any]) -> None:
        httpx.put(f"{self.running.base_url}/admin/router", json=body).raise_for_status()


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    sim = load_sim_fleet(default_sim_fleet_path())
    with running_fleet(sim) as running:
        yield Fleet(running, fleet_config_for(sim, running.base_url))


@pytest.fixture
def store(sqlite_url: str) -> Store:
    return open_store(sqlite_url)


def probe_round(
    fleet: Fleet, store: Store, suite: str, endpoints: Sequence[str], concurrency: int = 8
) -> dict[str, dict[str, float]]:
    """Run and score one round; per endpoint, the flagged-result rate of every flagged metric."""
    targets = [fleet.config.endpoint(name) for name in endpoints]
    stored = run_once(
        fleet.config,
        load_suite(suite),
        store,
        targets,
        concurrency=concurrency,
        load_shape=f"c{concurrency}",
    )
    assert all(e.ok == e.sent for e in stored.summary.endpoints), stored.summary
    score_stored(store, ResultFilter(run_ids=(stored.run_id,)))
    rates: dict[str, dict[str, float]] = {name: {} for name in endpoints}
    for result in store.results_for_run(stored.run_id):
        for score in result.scores:
            bucket = rates[result.endpoint]
            bucket.setdefault(score.metric, 0.0)
            bucket[score.metric] += score.flagged
    counts = {
        name: sum(1 for r in store.results_for_run(stored.run_id) if r.endpoint == name)
        for name in endpoints
    }
    return {name: {m: v / counts[name] for m, v in per.items()} for name, per in rates.items()}


def flagged(rates: dict[str, float], metric: str) -> float:
    return rates.get(metric, 0.0)


def test_healthy_fleet_is_quiet(fleet: Fleet, store: Store) -> None:
    rates = probe_round(fleet, store, "topk", ["gpu-fp32", "tpu-bf16"])
    for pool in ("gpu-fp32", "tpu-bf16"):
        assert flagged(rates[pool], "unexpected_script") == 0, pool
    # fp32 equals the reference exactly; honest bf16 may differ on near-ties, never clearly.
    assert flagged(rates["gpu-fp32"], "first_divergence") == 0
    assert flagged(rates["tpu-bf16"], "first_divergence") <= 0.05
    for pool in ("gpu-fp32", "tpu-bf16"):
        assert flagged(rates[pool], "greedy_not_argmax") == 0, pool


def test_corrupt_logits_is_caught_by_the_script_detector(fleet: Fleet, store: Store) -> None:
    fleet.faults("gpu-fp32", {"corrupt_logits": {"p": 0.1, "targets": "rare_script", "seed": 7}})
    try:
        rates = probe_round(fleet, store, "topk", ["gpu-fp32", "tpu-bf16"])
    finally:
        fleet.faults("gpu-fp32", {"corrupt_logits": None})
    assert flagged(rates["gpu-fp32"], "unexpected_script") >= 0.3
    assert flagged(rates["tpu-bf16"], "unexpected_script") == 0


def test_approx_topk_shows_only_under_load(fleet: Fleet, store: Store) -> None:
    fleet.faults("gpu-fp32", {"approx_topk": {}})
    try:
        alone = probe_round(fleet, store, "topk", ["gpu-fp32"], concurrency=1)
        loaded = probe_round(fleet, store, "topk", ["gpu-fp32"], concurrency=8)
    finally:
        fleet.faults("gpu-fp32", {"approx_topk": None})
    # Alone, every request decodes at batch size 1, where the fused layout is exact.
    assert flagged(alone["gpu-fp32"], "greedy_not_argmax") == 0
    assert flagged(alone["gpu-fp32"], "first_divergence") == 0
    # Under load the sampler drops tokens its own logprobs rank first.
    assert flagged(loaded["gpu-fp32"], "greedy_not_argmax") >= 0.2
    assert flagged(loaded["gpu-fp32"], "first_divergence") > 0


def test_long_context_pool_diverges_on_short_prompts(fleet: Fleet, store: Store) -> None:
    rates = probe_round(fleet, store, "topk", ["gpu-fp32", "long-ctx"])
    assert flagged(rates["long-ctx"], "first_divergence") >= 0.2
    assert flagged(rates["gpu-fp32"], "first_divergence") == 0


def test_sticky_misrouting_is_seen_per_session(fleet: Fleet, store: Store) -> None:
    """A misrouted session stays misrouted: its turns are flagged together, and the session
    rate (what users experience) is reported beside the request rate."""
    share = 0.34
    fleet.router({"misroute_share": share})
    try:
        # Session ids are random, so which sessions the router misroutes is too (a round of n
        # sessions has none misrouted with probability 0.66**n): add rounds until both kinds
        # were sent.
        for _ in range(6):
            probe_round(fleet, store, "routing", ["front-door"])
            sessions = {r.session_id for r in store.results_in_window({"endpoint": "front-door"})}
            misrouted = {sid for sid in sessions if unit_hash("misroute", sid) < share}
            if misrouted and misrouted != sessions:
                break
    finally:
        fleet.router({"misroute_share": 0.0})
    per_session: dict[str, list[bool]] = {}
    for result in store.results_in_window({"endpoint": "front-door"}):
        hit = any(s.flagged for s in result.scores if s.metric == "first_divergence")
        per_session.setdefault(result.session_id, []).append(hit)
    flagged_sessions = [turns for turns in per_session.values() if any(turns)]
    assert 1 <= len(flagged_sessions) < len(per_session)
    # Only the sessions the front door's hash sent to the long-context pool are degraded.
    assert {sid for sid, turns in per_session.items() if any(turns)} <= misrouted
    # Sticky: most turns of a misrouted session are degraded, none of a healthy one.
    for turns in flagged_sessions:
        assert sum(turns) >= len(turns) // 2
    (door,) = session_impact(store, metrics=["first_divergence"])
    assert door.flagged_sessions == len(flagged_sessions)
    assert door.session_rate == len(flagged_sessions) / len(per_session)
    assert door.request_rate == sum(sum(t) for t in per_session.values()) / door.requests


def test_determinism_breaks_under_batched_approx_topk(fleet: Fleet, store: Store) -> None:
    healthy = probe_round(fleet, store, "determinism", ["gpu-fp32"], concurrency=8)
    assert flagged(healthy["gpu-fp32"], "majority_mismatch") == 0
    fleet.faults("gpu-fp32", {"approx_topk": {}})
    try:
        broken = probe_round(fleet, store, "determinism", ["gpu-fp32"], concurrency=8)
    finally:
        fleet.faults("gpu-fp32", {"approx_topk": None})
    assert flagged(broken["gpu-fp32"], "majority_mismatch") > 0


def test_sampling_distribution_fits_when_healthy_and_not_when_corrupt(
    fleet: Fleet, store: Store
) -> None:
    healthy = probe_round(fleet, store, "sampling", ["gpu-fp32"], concurrency=16)
    assert flagged(healthy["gpu-fp32"], "first_token_out_of_support") == 0
    fleet.faults("gpu-fp32", {"corrupt_logits": {"p": 0.3, "targets": "rare_script", "seed": 3}})
    try:
        corrupt = probe_round(fleet, store, "sampling", ["gpu-fp32"], concurrency=16)
    finally:
        fleet.faults("gpu-fp32", {"corrupt_logits": None})
    assert flagged(corrupt["gpu-fp32"], "first_token_out_of_support") > 0.1
    assert flagged(corrupt["gpu-fp32"], "sampling_fit_p") > 0
