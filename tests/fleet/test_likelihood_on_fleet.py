"""Reference likelihood over HTTP: text a corrupted sampler writes is text the reference would
not write; healthy fp32 and bf16 pools are not flagged."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest

from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.probes import load_suite
from canary.records import ResultFilter
from canary.runner.once import run_once
from canary.scoring import score_stored
from canary.sim.fleetconfig import SimFleetConfig
from canary.sim.server import running_fleet
from canary.store import Store

pytestmark = pytest.mark.slow

POOLS = [
    {"name": "fp32"},
    {"name": "bf16", "precision": "bf16"},
    {
        "name": "corrupt",
        "faults": {"corrupt_logits": {"p": 0.3, "targets": "rare_script", "seed": 5}},
    },
]


@pytest.fixture(scope="module")
def nll(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[float]]]:
    from canary.store import open_store

    store: Store = open_store(f"sqlite:///{tmp_path_factory.mktemp('nll') / 'c.db'}")
    sim = SimFleetConfig.model_validate({"pools": POOLS})
    with running_fleet(sim) as running:
        endpoints = [
            EndpointConfig(
                name=str(p["name"]),
                base_url=running.pool_url(str(p["name"])),
                flavour="openai-completions",
                model=sim.model_name,
            )
            for p in POOLS
        ]
        fleet = FleetConfig(defaults=Limits(concurrency=8, timeout_s=120), endpoints=endpoints)
        stored = run_once(fleet, load_suite("fixed"), store, endpoints, concurrency=8)
    score_stored(store, ResultFilter(run_ids=(stored.run_id,)))
    values: dict[str, list[float]] = {}
    flagged: dict[str, int] = {}
    for result in store.results_for_run(stored.run_id):
        for score in result.scores:
            if score.metric == "reference_nll" and score.value is not None:
                values.setdefault(result.endpoint, []).append(score.value)
            if score.metric == "implausible_text":
                flagged[result.endpoint] = flagged.get(result.endpoint, 0) + int(score.flagged)
    yield {**values, **{f"{k}!": [float(v)] for k, v in flagged.items()}}


def test_every_output_is_scored_under_the_reference(nll: dict[str, list[float]]) -> None:
    planned = sum(p.repeat for p in load_suite("fixed").probes)
    assert {len(nll[p]) for p in ("fp32", "bf16", "corrupt")} == {planned}


def test_healthy_pools_are_not_flagged(nll: dict[str, list[float]]) -> None:
    assert nll["fp32!"] == [0.0] and nll["bf16!"] == [0.0]


def test_corrupted_sampling_is_text_the_reference_would_not_write(
    nll: dict[str, list[float]],
) -> None:
    healthy = statistics.median(nll["fp32"])
    assert statistics.median(nll["corrupt"]) > healthy + 1.0
    assert nll["corrupt!"][0] >= 1
