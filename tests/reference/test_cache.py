"""Reference outputs are computed once per model and served from the store afterwards."""

from __future__ import annotations

import pytest

from canary.probes.model import Probe, SamplingParams
from canary.reference import ReferenceModel, ReferenceRunner, cache_key, greedy_params
from canary.store import open_store


@pytest.fixture(scope="module")
def ref() -> ReferenceModel:
    return ReferenceModel.load()


def test_cache_hit_avoids_recomputation(ref: ReferenceModel, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    prompts = ["Return the number of", "def f(x):\n    return", "Return the number of"]

    first = ReferenceRunner(ref, store)
    outputs = first.greedy(prompts, max_tokens=6)
    assert first.computed == 2  # the repeated prompt is computed once
    assert outputs[0] == outputs[2]

    second = ReferenceRunner(ref, store)
    again = second.greedy([*prompts, "Open the file"], max_tokens=6)
    assert second.computed == 1  # only the new prompt
    assert again[:3] == outputs

    third = ReferenceRunner(ref, store)
    third.greedy(prompts, max_tokens=7)  # other params are another key
    assert third.computed == 2
    store.close()


def test_probes_use_their_own_max_tokens(ref: ReferenceModel, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    probe = Probe(id="p1", prompt="Return the", params=SamplingParams(max_tokens=3))
    runner = ReferenceRunner(ref, store)
    (out,) = runner.greedy([probe], top_logprobs=2)
    assert len(out.tokens) <= 3
    assert (out.finish_reason == "length") == (len(out.tokens) == 3)
    (cached,) = ReferenceRunner(ref, store).greedy(["Return the"], max_tokens=3, top_logprobs=2)
    assert cached == out
    store.close()


def test_cache_key_is_canonical() -> None:
    a = cache_key("hi", {"b": 1, "a": 2})
    assert a == cache_key("hi", {"a": 2, "b": 1})
    assert a != cache_key("hi", {"a": 2, "b": 2})
    assert cache_key("hi", greedy_params(4, 5)) != cache_key("hi ", greedy_params(4, 5))
