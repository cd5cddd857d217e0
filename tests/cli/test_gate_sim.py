"""Issue 18's simulated-fleet checks with the shipped margins: against a baseline of 3 healthy
topk rounds, the healthy fp32 pool passes and the same pool with corrupt logits (switched on
through the fleet's admin API) is a regression, each within 4,000 probes, through
`gate_rounds`, the library function `canary gate` calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from canary.compare.baselines import capture_baseline
from canary.compare.sequential_run import gate_rounds
from canary.config.fleet import FleetConfig
from canary.pipeline import run_and_judge
from canary.probes import load_suite
from canary.records import ResultFilter
from canary.sim.embedded import default_sim_fleet_path, fleet_config_for
from canary.sim.fleetconfig import load_sim_fleet
from canary.sim.server import RunningFleet, running_fleet
from canary.stats import DEFAULT_POLICIES
from canary.store import Store, open_store

pytestmark = pytest.mark.slow

BUDGET = 4000
POOL = "gpu-fp32"


@pytest.fixture(scope="module")
def fleet() -> Iterator[tuple[RunningFleet, FleetConfig]]:
    sim = load_sim_fleet(default_sim_fleet_path())
    with running_fleet(sim) as running:
        yield running, fleet_config_for(sim, running.base_url)


@pytest.fixture
def baselined(fleet: tuple[RunningFleet, FleetConfig], sqlite_url: str) -> Store:
    """A store holding the baseline ``healthy``: 3 healthy topk rounds of every endpoint."""
    _, config = fleet
    store = open_store(sqlite_url)
    suite = load_suite("topk")
    runs = [run_and_judge(store, config, suite, config.endpoints).stored.run_id for _ in range(3)]
    capture_baseline(
        store, "healthy", ResultFilter(run_ids=tuple(runs), suites=("topk",)), ("endpoint",)
    )
    return store


def _runner(store: Store, config: FleetConfig) -> Callable[[], int]:
    suite = load_suite("topk")

    def run_round() -> int:
        return run_and_judge(store, config, suite, [config.endpoint(POOL)]).stored.run_id

    return run_round


def test_healthy_fp32_passes_with_the_shipped_margins(
    fleet: tuple[RunningFleet, FleetConfig], baselined: Store
) -> None:
    _, config = fleet
    decision, _ = gate_rounds(
        baselined,
        "healthy",
        _runner(baselined, config),
        DEFAULT_POLICIES,
        max_probes=BUDGET,
        suite="topk",
    )
    assert (decision.status, decision.exit_code, decision.stop) == ("pass", 0, "decided")
    assert decision.probes <= BUDGET
    critical = [v for v in decision.verdicts if v.critical]
    assert critical and all(v.verdict == "pass" for v in critical)
    assert {v.cohort for v in decision.verdicts} == {f"endpoint={POOL}"}


def test_corrupt_logits_are_a_regression_with_the_shipped_margins(
    fleet: tuple[RunningFleet, FleetConfig], baselined: Store
) -> None:
    running, config = fleet
    url = f"{running.base_url}/admin/pools/{POOL}/faults"
    httpx.put(url, json={"corrupt_logits": {"seed": 7}}).raise_for_status()
    try:
        decision, _ = gate_rounds(
            baselined,
            "healthy",
            _runner(baselined, config),
            DEFAULT_POLICIES,
            max_probes=BUDGET,
            suite="topk",
        )
    finally:
        httpx.put(url, json={"corrupt_logits": None}).raise_for_status()
    assert (decision.status, decision.exit_code, decision.stop) == (
        "regression",
        1,
        "regression",
    )
    assert decision.probes <= BUDGET
    regressed = {v.metric for v in decision.verdicts if v.verdict == "regression"}
    assert regressed & {m for m, p in DEFAULT_POLICIES.items() if p.critical}
