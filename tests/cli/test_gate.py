"""`canary gate` on the simulated fleet over real HTTP: a healthy pool passes against its own
healthy rounds, a pool with corrupt logits (a real fault in its serving path, switched on through
the fleet's admin API) is flagged, and bad arguments are one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from canary.compare.sequential_run import gate_rounds
from canary.config.fleet import FleetConfig
from canary.pipeline import run_and_judge
from canary.probes import load_suite
from canary.sim.embedded import default_sim_fleet_path, fleet_config_for
from canary.sim.fleetconfig import load_sim_fleet
from canary.sim.server import RunningFleet, running_fleet
from canary.stats import DEFAULT_POLICIES
from canary.store import Store, open_store
from tests.support.cli import invoke

pytestmark = pytest.mark.slow

#: The topk suite has 23 probes; margins a few rounds of it can rule out (the shipped margins
#: are sized for the 4,000-probe budget, see benchmarks/gate_power.py).
WIDE = {
    name: DEFAULT_POLICIES[name].model_copy(update={"margin": 0.2})
    for name in ("first_divergence", "greedy_not_argmax", "unexpected_script")
}


@pytest.fixture(scope="module")
def fleet() -> Iterator[tuple[RunningFleet, FleetConfig]]:
    sim = load_sim_fleet(default_sim_fleet_path())
    with running_fleet(sim) as running:
        yield running, fleet_config_for(sim, running.base_url)


def _faults(running: RunningFleet, pool: str, body: dict[str, object]) -> None:
    httpx.put(f"{running.base_url}/admin/pools/{pool}/faults", json=body).raise_for_status()


def _rounds(store: Store, config: FleetConfig, pool: str, n: int) -> None:
    suite = load_suite("topk")
    for _ in range(n):
        run_and_judge(store, config, suite, [config.endpoint(pool)])


def _runner(store: Store, config: FleetConfig, pool: str) -> Callable[[], int]:
    suite = load_suite("topk")

    def run_round() -> int:
        return run_and_judge(store, config, suite, [config.endpoint(pool)]).stored.run_id

    return run_round


def test_healthy_fp32_passes_against_its_healthy_rounds(
    fleet: tuple[RunningFleet, FleetConfig], sqlite_url: str
) -> None:
    _, config = fleet
    store = open_store(sqlite_url)
    # 6 rounds pair half of the 12-round budget: the paired test is used.
    _rounds(store, config, "gpu-fp32", 6)
    decision, _ = gate_rounds(
        store,
        "pool=gpu-fp32",
        _runner(store, config, "gpu-fp32"),
        WIDE,
        max_probes=23 * 12,
        suite="topk",
    )
    assert (decision.status, decision.exit_code) == ("pass", 0)
    assert {v.method for v in decision.verdicts} == {"paired-betting-eprocess"}
    assert decision.probes <= 23 * 12


def test_corrupt_logits_pool_is_flagged_by_the_cli(
    fleet: tuple[RunningFleet, FleetConfig], sqlite_url: str, tmp_path: Path
) -> None:
    running, config = fleet
    store = open_store(sqlite_url)
    _rounds(store, config, "gpu-fp32", 3)
    fleet_file = tmp_path / "fleet.json"
    fleet_file.write_text(config.model_dump_json())
    _faults(
        running, "gpu-fp32", {"corrupt_logits": {"p": 0.3, "targets": "rare_script", "seed": 3}}
    )
    try:
        code, out = invoke(
            "gate",
            "--fleet",
            str(fleet_file),
            "--before",
            "pool=gpu-fp32",
            "--select",
            "pool=gpu-fp32",
            "--suite",
            "topk",
            "--max-probes",
            "230",
            "--db",
            sqlite_url,
            "--json",
        )
    finally:
        _faults(running, "gpu-fp32", {"corrupt_logits": None})
    assert code == 1, out
    report = json.loads(out)
    assert report["status"] == "regression" and report["probes"] <= 230
    regressed = {v["metric"] for v in report["verdicts"] if v["verdict"] == "regression"}
    assert regressed & {"unexpected_script", "first_divergence"}


def test_a_before_that_selects_nothing_is_a_one_line_error(
    fleet: tuple[RunningFleet, FleetConfig], sqlite_url: str, tmp_path: Path
) -> None:
    _, config = fleet
    fleet_file = tmp_path / "fleet.json"
    fleet_file.write_text(config.model_dump_json())
    code, out = invoke(
        "gate",
        "--fleet",
        str(fleet_file),
        "--before",
        "pool=nowhere",
        "--select",
        "pool=gpu-fp32",
        "--suite",
        "topk",
        "--db",
        sqlite_url,
    )
    assert code == 3, out
    assert "selects no stored results" in out and "Traceback" not in out
