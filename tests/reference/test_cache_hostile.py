"""A reference cache row with null logprobs (seen in the field) never fails a scoring pass."""

from __future__ import annotations

import math

from sqlalchemy import insert, select

from canary.probes.model import Probe, Suite
from canary.records import ResultFilter
from canary.records import TokenLogprob as Position
from canary.reference import ReferenceCache, cache_key, greedy_params
from canary.scoring import score_stored
from canary.scoring.reference import shared_reference_model
from canary.store import open_store
from canary.store.models import ReferenceOutputRow
from canary.store.reference_cache import position_from_json, position_to_json
from tests.store.helpers import hello_record, make_endpoints

PARAMS = greedy_params(4, 5)
#: What NaN logprobs became on their way through the JSON serializer.
NULL_TOKENS = [
    {"token": "Hello", "token_id": 3, "logprob": None, "top": {"Hello": -0.5, "Hi": None}},
    {"token": " world", "token_id": 4, "logprob": -0.25, "top": {" world": -0.25}},
]


def put_row(engine: object, fingerprint: str, prompt: str, tokens: object) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            insert(ReferenceOutputRow).values(
                model_fingerprint=fingerprint,
                cache_key=cache_key(prompt, PARAMS),
                prompt=prompt,
                params=PARAMS,
                output_text="Hello world",
                tokens=tokens,
            )
        )


def test_json_round_trip_of_missing_logprobs() -> None:
    position = Position("a", math.nan, {"a": math.nan, "b": -1.0, "c": -math.inf}, 1)
    stored = position_to_json(position)
    assert stored == {"token": "a", "token_id": 1, "logprob": None, "top": {"b": -1.0}}
    back = position_from_json(stored)
    assert back.logprob is None and back.top == {"b": -1.0}
    odd = position_from_json({"token": "a", "token_id": 1, "logprob": "x", "top": None})
    assert odd.logprob is None and odd.top == {}


def test_null_logprobs_read_back_and_unreadable_rows_are_misses(any_db_url: str) -> None:
    store = open_store(any_db_url)
    put_row(store.engine, "fp", "readable", NULL_TOKENS)
    put_row(store.engine, "fp", "unreadable", [{"token": "x"}])  # no token_id
    cache = ReferenceCache(store)
    found = cache.get_many("fp", [cache_key(p, PARAMS) for p in ("readable", "unreadable")])
    [output] = found.values()
    assert output.prompt == "readable" and output.token_ids == [3, 4]
    assert output.tokens[0].logprob is None and output.tokens[0].top == {"Hello": -0.5}
    with store.engine.connect() as conn:  # dropped, so the recomputed output can take its place
        assert conn.execute(select(ReferenceOutputRow.prompt)).scalars().all() == ["readable"]
    store.close()


def test_scoring_against_a_cached_null_logprob_does_not_raise(sqlite_url: str) -> None:
    probe = Probe(
        id="greedy",
        kind="topk",
        prompt="Return the number of",
        params={"logprobs": True, "top_logprobs": 3, "max_tokens": 4},
    )
    store = open_store(sqlite_url)
    suite_id = store.register_suite(Suite(name="ref", probes=[probe]))
    endpoint = make_endpoints()[0]
    store.register_endpoints([endpoint])
    run_id = store.start_run(suite_id, trigger="test")
    store.save_results(
        run_id,
        suite_id,
        [
            hello_record(
                "greedy",
                finish_reason="length",
                tokens=[Position("Hello", -0.1, {"Hello": -0.1}), Position(" world", None)],
            )
        ],
    )
    model = shared_reference_model(None)
    put_row(store.engine, model.fingerprint, model.render(probe, "openai-chat"), NULL_TOKENS)

    report = score_stored(store, ResultFilter(run_ids=(run_id,)))
    assert report.scored.get("top1_agreement") == 1
    [result] = store.results_for_run(run_id)
    scores = {s.metric: s.value for s in result.scores}
    assert scores["top1_agreement"] == 1.0  # compared with the cached output, not recomputed
    assert all(v is None or math.isfinite(v) for v in scores.values())
    store.close()


def test_rows_written_before_the_one_token_type_still_read(sqlite_url: str) -> None:
    """The positions the old reference `TokenLogprob.to_json` wrote (finite values, a float
    logprob) read back as the records' `TokenLogprob`, and a new write is byte-identical."""
    store = open_store(sqlite_url)
    old = [{"token": "Hi", "token_id": 7, "logprob": -0.125, "top": {"Hi": -0.125, "Ho": -2.5}}]
    put_row(store.engine, "fp", "old", old)
    [output] = ReferenceCache(store).get_many("fp", [cache_key("old", PARAMS)]).values()
    assert output.tokens == [Position("Hi", -0.125, {"Hi": -0.125, "Ho": -2.5}, 7)]
    assert [position_to_json(t) for t in output.tokens] == old
    assert output.finish_reason == "stop"  # one token of max_tokens 4: the model stopped itself
    store.close()
