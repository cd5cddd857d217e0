"""Tokens that end inside a character, written three ways by healthy servers, never diverge.

The simulated pools write such a token as real servers do (`token_encoding`): as U+FFFD, as
``""`` with alternatives colliding on one ``""`` key (vLLM), or as bytes (OpenAI). Over HTTP,
through the real adapters and store, the `utf8` suite (continuations that split Thai, Chinese and
Japanese characters across tokens) and the `topk` suite must show no first divergence and no
greedy-not-argmax on any healthy fp32 pool, while a faulty pool is still flagged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.probes import load_suite
from canary.records import ResultFilter, ambiguous_token_text
from canary.runner.once import run_once
from canary.scoring import score_stored
from canary.sim.fleetconfig import TOKEN_ENCODINGS, SimFleetConfig
from canary.sim.server import RunningFleet, running_fleet
from canary.store import Store

pytestmark = pytest.mark.slow

HEALTHY = [f"fp32-{encoding}" for encoding in TOKEN_ENCODINGS]
WINDOW = {"max_batch_size": 16, "batch_window_ms": 40}


@dataclass
class Fleet:
    running: RunningFleet
    config: FleetConfig


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    pools = [{"name": f"fp32-{e}", "token_encoding": e, **WINDOW} for e in TOKEN_ENCODINGS]
    pools += [
        {
            "name": "corrupt-empty",
            "token_encoding": "empty",
            "faults": {"corrupt_logits": {"p": 0.3, "targets": "rare_script", "seed": 11}},
            **WINDOW,
        },
        {
            "name": "approx-bytes",
            "token_encoding": "bytes",
            "faults": {"approx_topk": {}},
            **WINDOW,
        },
    ]
    sim = SimFleetConfig.model_validate({"pools": pools})
    with running_fleet(sim) as running:
        endpoints = [
            EndpointConfig(
                name=f"{pool['name']}-{kind}",
                base_url=running.pool_url(str(pool["name"])),
                flavour=f"openai-{kind}",
                model=sim.model_name,
                labels={"pool": str(pool["name"])},
            )
            for pool in pools
            for kind in ("completions", "chat")
        ]
        config = FleetConfig(defaults=Limits(concurrency=16, timeout_s=120), endpoints=endpoints)
        yield Fleet(running, config)


@dataclass
class Round:
    rates: dict[str, dict[str, float]]
    """Per endpoint: the flagged share of each metric."""
    tokens: dict[str, list[str]]
    """Per endpoint: every token text it returned."""
    agreement: dict[str, float]
    """Per endpoint: mean top-1 agreement with the reference."""


def probe_round(
    fleet: Fleet, store: Store, suite: str, endpoints: Sequence[str], concurrency: int = 8
) -> Round:
    targets = [fleet.config.endpoint(name) for name in endpoints]
    stored = run_once(
        fleet.config, load_suite(suite), store, targets, concurrency=concurrency, load_shape="c8"
    )
    assert all(e.ok == e.sent for e in stored.summary.endpoints), stored.summary
    score_stored(store, ResultFilter(run_ids=(stored.run_id,)))
    flagged: dict[str, dict[str, float]] = {name: {} for name in endpoints}
    counts = dict.fromkeys(endpoints, 0)
    tokens: dict[str, list[str]] = {name: [] for name in endpoints}
    agreement: dict[str, list[float]] = {name: [] for name in endpoints}
    for result in store.results_for_run(stored.run_id):
        counts[result.endpoint] += 1
        tokens[result.endpoint] += [t.token for t in result.tokens or []]
        for score in result.scores:
            bucket = flagged[result.endpoint]
            bucket[score.metric] = bucket.get(score.metric, 0.0) + score.flagged
            if score.metric == "top1_agreement" and score.value is not None:
                agreement[result.endpoint].append(score.value)
    rates = {
        name: {metric: n / counts[name] for metric, n in per.items()}
        for name, per in flagged.items()
    }
    means = {name: sum(v) / len(v) for name, v in agreement.items() if v}
    return Round(rates, tokens, means)


def test_utf8_suite_splits_characters_and_healthy_pools_agree(fleet: Fleet, store: Store) -> None:
    names = [f"{pool}-completions" for pool in HEALTHY]
    round_ = probe_round(fleet, store, "utf8", names)
    # The suite does what it is for: every pool returned partial-character tokens, each its way.
    written = {name: [t for t in round_.tokens[name] if _partial(t)] for name in names}
    assert any("\ufffd" in t for t in written["fp32-replacement-completions"])
    assert "" in written["fp32-empty-completions"]
    assert any(t.startswith("bytes:\\x") for t in written["fp32-bytes-completions"])
    for name in names:
        assert round_.rates[name].get("first_divergence", 0.0) == 0, name
        assert round_.rates[name].get("greedy_not_argmax", 0.0) == 0, name
        # Not merely unflagged: the same bytes agree (fp32 equals the reference up to batching).
        assert round_.agreement[name] >= 0.95, name


@pytest.mark.parametrize("kind", ["completions", "chat"])
def test_topk_suite_is_quiet_on_healthy_pools_in_every_encoding(
    fleet: Fleet, store: Store, kind: str
) -> None:
    names = [f"{pool}-{kind}" for pool in HEALTHY]
    round_ = probe_round(fleet, store, "topk", names)
    for name in names:
        assert round_.rates[name].get("first_divergence", 0.0) == 0, name
        assert round_.rates[name].get("greedy_not_argmax", 0.0) == 0, name


def test_chat_bytes_pool_sends_bytes_the_adapter_keeps(fleet: Fleet, store: Store) -> None:
    stored = run_once(
        fleet.config,
        load_suite("topk"),
        store,
        [fleet.config.endpoint("fp32-bytes-chat")],
        concurrency=4,
        load_shape="c4",
    )
    results = store.results_for_run(stored.run_id)
    positions = [t for r in results for t in r.tokens or []]
    assert positions and all(t.bytes == t.token.encode("utf-8") for t in positions)


def test_faulty_pools_are_still_flagged_whatever_their_encoding(fleet: Fleet, store: Store) -> None:
    corrupt = probe_round(fleet, store, "topk", ["corrupt-empty-completions"])
    assert corrupt.rates["corrupt-empty-completions"].get("first_divergence", 0.0) > 0
    for suite in ("topk", "utf8"):
        approx = probe_round(fleet, store, suite, ["approx-bytes-completions"], concurrency=8)
        rates = approx.rates["approx-bytes-completions"]
        assert rates.get("greedy_not_argmax", 0.0) > 0, suite
        assert rates.get("first_divergence", 0.0) > 0, suite


def _partial(token: str) -> bool:
    return ambiguous_token_text(token) or token.startswith("bytes:")
