"""`canary identity` end to end on the simulated fleet over real HTTP: the fp32 and the honest
bf16 pools are the reference model (`same`), a pool with stretched RoPE and ones with corrupt
logits or 4-bit weights (real faults in their serving paths, switched on at run time) are not
(`different`), and bad arguments are
one-line errors with exit 3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from canary.compare.baselines import capture_baseline
from canary.config.fleet import FleetConfig
from canary.identity import check_identity
from canary.identity._setup import border_inputs
from canary.records import ResultFilter
from canary.scoring.reference import shared_reference_model
from canary.sim.embedded import default_sim_fleet_path, fleet_config_for
from canary.sim.fleetconfig import load_sim_fleet
from canary.sim.server import RunningFleet, running_fleet
from canary.store import open_store
from tests.support.cli import invoke

pytestmark = pytest.mark.slow

#: Prompts per check: enough for the KL margin to decide on this model, small enough for CI.
BUDGET = "16"


@pytest.fixture(scope="module")
def fleet() -> Iterator[tuple[RunningFleet, FleetConfig]]:
    sim = load_sim_fleet(default_sim_fleet_path())
    with running_fleet(sim) as running:
        yield running, fleet_config_for(sim, running.base_url)


#: Level of the checks that honest pools are `same`. The sampled tests (MMD, RUT) reject an
#: honest pool at their level by design: at 0.05 the verdict says `different` in 2–3% of A/A
#: runs (`benchmarks.model_equality`), one CI run in twenty over these tests. At 0.005 that is
#: one in two hundred per test, and the equivalence bound still has to show `same` (the KL
#: bootstrap's smallest p, 1/2000, stays below the per-test level α/k).
A_A_ALPHA = "0.005"


def _fleet_file(config: FleetConfig, tmp_path: Path) -> Path:
    path = tmp_path / "fleet.json"
    path.write_text(config.model_dump_json())
    return path


def _identity(path: Path, db: str, endpoint: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out = invoke(
        "identity",
        "--fleet",
        str(path),
        "--db",
        db,
        "--endpoint",
        endpoint,
        "--budget",
        BUDGET,
        "--json",
        *extra,
    )
    return code, json.loads(out)


@pytest.mark.parametrize("pool", ["gpu-fp32", "tpu-bf16"])
def test_faithful_pools_are_the_same_model(
    fleet: tuple[RunningFleet, FleetConfig], tmp_path: Path, sqlite_url: str, pool: str
) -> None:
    _, config = fleet
    code, report = _identity(_fleet_file(config, tmp_path), sqlite_url, pool, "--alpha", A_A_ALPHA)
    assert (code, report["verdict"]) == (0, "same"), report
    tests = {t["name"]: t for t in report["tests"]}
    assert {"kl-margin", "mmd-hamming", "rut", "border-flips"} <= set(tests)
    assert tests["kl-margin"]["effects"]["mean_kl"] < 2e-3
    # Everything sent was stored, like any other round.
    store = open_store(sqlite_url)
    results = store.results_for_run(int(report["run_id"]))
    assert {r.suite for r in results} == {"identity"} and results


def test_a_stretched_rope_pool_is_a_different_model(
    fleet: tuple[RunningFleet, FleetConfig], tmp_path: Path, sqlite_url: str
) -> None:
    _, config = fleet
    code, report = _identity(_fleet_file(config, tmp_path), sqlite_url, "long-ctx")
    assert (code, report["verdict"]) == (1, "different"), report
    assert report["evidence"], "a different verdict names where the sides differ"


def test_corrupt_logits_switched_on_at_run_time_is_a_different_model(
    fleet: tuple[RunningFleet, FleetConfig], sqlite_url: str
) -> None:
    running, config = fleet
    url = f"{running.base_url}/admin/pools/gpu-fp32/faults"
    httpx.put(url, json={"corrupt_logits": {"p": 0.2, "boost": 5, "seed": 1}}).raise_for_status()
    try:
        report = check_identity(
            open_store(sqlite_url),
            config,
            "gpu-fp32",
            model=shared_reference_model(None),
            budget=int(BUDGET),
        )
    finally:
        httpx.put(url, json={"corrupt_logits": None}).raise_for_status()
    assert report.verdict == "different", report.to_dict()
    kl = next(t for t in report.tests if t.name == "kl-margin")
    assert kl.effects["same_top1"] < 0.95


@pytest.mark.parametrize("weights", ["int4", "substitute"])
def test_quantized_weights_switched_on_at_run_time_are_a_different_model(
    fleet: tuple[RunningFleet, FleetConfig], sqlite_url: str, weights: str
) -> None:
    running, config = fleet
    url = f"{running.base_url}/admin/pools/gpu-fp32/faults"
    httpx.put(url, json={"weights": weights}).raise_for_status()
    model = shared_reference_model(None)
    try:
        report = check_identity(
            open_store(sqlite_url),
            config,
            "gpu-fp32",
            model=model,
            budget=int(BUDGET),
            border=border_inputs(None, model, []),
        )
    finally:
        httpx.put(url, json={"weights": "original"}).raise_for_status()
    assert report.verdict == "different", report.to_dict()
    tests = {t.name: t for t in report.tests}
    assert tests["kl-margin"].effects["kl_lower"] > tests["kl-margin"].effects["margin"]
    assert tests["border-flips"].p_value <= report.level


def test_against_a_baseline_of_a_faithful_round(
    fleet: tuple[RunningFleet, FleetConfig], sqlite_url: str
) -> None:
    _, config = fleet
    store = open_store(sqlite_url)
    first = check_identity(store, config, "gpu-fp32", against="endpoint:tpu-bf16", budget=12)
    assert first.run_id is not None
    capture_baseline(store, "healthy", ResultFilter(run_ids=(first.run_id,)), ("endpoint",))
    report = check_identity(
        store, config, "gpu-fp32", against="baseline:healthy", budget=12, alpha=float(A_A_ALPHA)
    )
    assert report.verdict == "same", report.to_dict()
    assert {t.name for t in report.tests} >= {"kl-margin", "logprob-tracking"}


def test_against_another_endpoint_compares_the_two_serving_sides(
    fleet: tuple[RunningFleet, FleetConfig], tmp_path: Path, sqlite_url: str
) -> None:
    _, config = fleet
    path = _fleet_file(config, tmp_path)
    code, report = _identity(path, sqlite_url, "long-ctx", "--against", "endpoint:gpu-fp32")
    assert (code, report["verdict"]) == (1, "different"), report
    names = {t["name"] for t in report["tests"]}
    assert "logprob-tracking" in names


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--endpoint", "nope"], "no endpoint named 'nope'"),
        (["--endpoint", "gpu-fp32", "--against", "sideways"], "--against 'sideways'"),
        (["--endpoint", "gpu-fp32", "--budget", "1"], "--budget"),
    ],
)
def test_bad_arguments_are_one_line_config_errors(
    fleet: tuple[RunningFleet, FleetConfig],
    tmp_path: Path,
    sqlite_url: str,
    args: list[str],
    needle: str,
) -> None:
    _, config = fleet
    code, out = invoke(
        "identity", "--fleet", str(_fleet_file(config, tmp_path)), "--db", sqlite_url, *args
    )
    assert code == 3, out
    assert needle in out
