"""The one composition of a round: run → store → score → judge, over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.pipeline import run_and_judge
from canary.probes.model import Probe, Suite
from canary.runner.once import StoredRound
from canary.store import Store
from tests.support.openai_server import serve_openai

SUITE = Suite(name="mini", probes=[Probe(id="hello", prompt="Say hello", repeat=2)])


@pytest.fixture
def fleet() -> Iterator[FleetConfig]:
    with serve_openai() as fake:
        yield FleetConfig(
            defaults=Limits(max_retries=0, timeout_s=5),
            endpoints=[
                EndpointConfig(
                    name="pool-a",
                    base_url=fake.base_url,
                    flavour="openai-completions",
                    model="m",
                    labels={"pool": "a"},
                )
            ],
        )


def test_a_completed_round_is_stored_then_scored(store: Store, fleet: FleetConfig) -> None:
    seen: list[StoredRound] = []
    judged = run_and_judge(store, fleet, SUITE, fleet.endpoints, on_stored=seen.append)
    assert [s.run_id for s in seen] == [judged.stored.run_id]
    assert judged.stored.status == "completed"
    assert judged.scoring is not None and judged.scoring.results == 2
    assert judged.evaluation is None  # no alert settings: nothing to judge against
    assert judged.transitions == [] and judged.notifications == []
    assert len(store.results_for_run(judged.stored.run_id)) == 2


def test_an_interrupted_round_is_scored_only_when_asked(store: Store, fleet: FleetConfig) -> None:
    stopped = threading.Event()
    stopped.set()
    for score_aborted in (False, True):
        judged = run_and_judge(
            store,
            fleet,
            SUITE,
            fleet.endpoints,
            score_aborted=score_aborted,
            stop_flag=stopped,
            handle_signals=False,
        )
        assert judged.stored.status == "aborted"
        assert (judged.scoring is not None) is score_aborted
        assert judged.evaluation is None


def test_scoring_off_leaves_the_round_unscored(store: Store, fleet: FleetConfig) -> None:
    judged = run_and_judge(store, fleet, SUITE, fleet.endpoints, score=False, trigger="test")
    assert judged.stored.status == "completed" and judged.scoring is None
