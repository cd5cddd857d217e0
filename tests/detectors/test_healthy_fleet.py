"""The per-output detectors stay quiet on every shipped suite run against a healthy pool of the
simulated fleet, over real HTTP (its tiny model loops and invents words, so this is the check
that their limits sit above what a healthy server emits; see docs/detectors.md)."""

from __future__ import annotations

from collections import Counter

import pytest

from canary.probes import list_suites, load_suite
from canary.records import ResultFilter
from canary.runner.once import run_once
from canary.scoring import score_stored
from canary.sim.embedded import default_sim_fleet_path, fleet_config_for
from canary.sim.fleetconfig import load_sim_fleet
from canary.sim.server import running_fleet
from canary.store import open_store

pytestmark = pytest.mark.slow

NEW_METRICS = {
    "special_token_leak",
    "tokenizer_marker_leak",
    "repetition",
    "symbol_salad",
    "word_salad",
    "implausible_text",
    "prompt_echo",
}


def test_new_detectors_flag_nothing_on_a_healthy_pool(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    sim = load_sim_fleet(default_sim_fleet_path())
    flagged: Counter[tuple[str, str]] = Counter()
    scored: Counter[str] = Counter()
    with running_fleet(sim) as running:
        config = fleet_config_for(sim, running.base_url)
        target = [config.endpoint("gpu-fp32")]
        for manifest in list_suites():
            stored = run_once(config, load_suite(manifest), store, target, concurrency=8)
            score_stored(store, ResultFilter(run_ids=(stored.run_id,)))
            for result in store.results_for_run(stored.run_id):
                for score in result.scores:
                    if score.metric in NEW_METRICS:
                        scored[score.metric] += 1
                        flagged[(manifest.stem, score.metric)] += score.flagged
    print(f"\nscored {dict(scored)}; flagged {dict(+flagged) or 'none'}")
    assert {"special_token_leak", "repetition", "symbol_salad"} <= set(scored)
    assert +flagged == Counter()
