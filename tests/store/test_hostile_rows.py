"""Hostile values at the store's boundary: stored the same on SQLite and PostgreSQL, or refused
one record at a time; and rows written before the boundary existed still read and score."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, update

from canary.errors import StoreError
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, TokenLogprob
from canary.sanitize import MAX_JSON_DEPTH, register_secret_envs
from canary.scoring import score_stored
from canary.store import Store, open_store
from canary.store.models import ResultRow
from tests.store.helpers import hello_record, make_endpoints, make_suite, ok_record

SECRET_ENV = "CANARY_TEST_STORE_SECRET"
SECRET = "hunter2-secret-value"


@pytest.fixture
def store(any_db_url: str) -> Store:
    return open_store(any_db_url)


def open_run(store: Store, suite: Suite | None = None) -> tuple[int, int]:
    suite_id = store.register_suite(suite or make_suite())
    store.register_endpoints(make_endpoints())
    return store.start_run(suite_id, trigger="test"), suite_id


def test_lone_surrogates_and_nul_become_replacement_characters(store: Store) -> None:
    run_id, suite_id = open_run(store)
    hostile = ok_record(
        output_text="a\ud800b\x00c",
        served_by="pool-\udfff",
        finish_reason="st\ud800op",
        error_detail=None,
        response_headers={"x-served-by": "pool-\udfff", "x-\ud800": "v\x00"},
        tokens=[TokenLogprob("\ud800", -0.1, {"\ud800": -0.1, "ok": -2.0}, 7)],
        usage={"completion_tokens\ud800": 1},
        request={"prompt": "hi \ud800"},
    )
    healthy = ok_record(index=1)
    ids = store.save_results(run_id, suite_id, [hostile, healthy])
    got = store.get_result(ids[0])
    assert got.output_text == "a\ufffdb\ufffdc"
    assert got.served_by == "pool-\ufffd" and got.finish_reason == "st\ufffdop"
    assert got.response_headers == {"x-served-by": "pool-\ufffd", "x-\ufffd": "v\ufffd"}
    assert got.tokens == [TokenLogprob("\ufffd", -0.1, {"\ufffd": -0.1, "ok": -2.0}, 7)]
    assert got.usage == {"completion_tokens\ufffd": 1}
    assert got.request == {"prompt": "hi \ufffd"}
    assert store.get_result(ids[1]).tokens == healthy.tokens  # clean values pass unchanged


def test_alternatives_that_clean_to_one_key_keep_later_positions_aligned(store: Store) -> None:
    run_id, suite_id = open_run(store)
    tokens = [
        TokenLogprob("a", -1.0, {chr(0xD800): -1.0, chr(0xDFFF): -2.0, "x": -3.0}),
        TokenLogprob("b\udc00", -0.5, {"b": -0.5, "c": -4.0}),
    ]
    [result_id] = store.save_results(run_id, suite_id, [ok_record(tokens=tokens)])
    assert store.get_result(result_id).tokens == [
        TokenLogprob("a", -1.0, {"\ufffd": -2.0, "x": -3.0}),
        TokenLogprob("b\ufffd", -0.5, {"b": -0.5, "c": -4.0}),
    ]


def test_non_finite_logprobs_are_missing_and_such_alternatives_dropped(store: Store) -> None:
    run_id, suite_id = open_run(store)
    nan, inf = float("nan"), float("inf")
    record = ok_record(
        tokens=[
            TokenLogprob("a", nan, {"a": nan, "b": -inf, "c": -1.0}),
            TokenLogprob("b", inf, {"b": "x"}),  # type: ignore[dict-item]
            TokenLogprob("c", -0.5, {"c": -0.5}, token_id=True),  # type: ignore[arg-type]
        ],
        dropped_logprobs=4,
    )
    [result_id] = store.save_results(run_id, suite_id, [record])
    assert store.get_result(result_id).tokens == [
        TokenLogprob("a", None, {"c": -1.0}),
        TokenLogprob("b", None, {}),
        TokenLogprob("c", -0.5, {"c": -0.5}),
    ]
    with store.engine.connect() as conn:
        response = conn.execute(select(ResultRow.response)).scalar_one()
    assert response["dropped_logprobs"] == 4


def test_deep_nesting_is_cut_not_recursed(store: Store) -> None:
    run_id, suite_id = open_run(store)
    deep: Any = "bottom"
    for _ in range(5000):
        deep = [deep]
    [result_id] = store.save_results(
        run_id, suite_id, [ok_record(request={"prompt": "hi", "extra": deep})]
    )
    request = store.get_result(result_id).request
    depth, value = 0, request["extra"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert value == "…(nesting cut)" and depth < MAX_JSON_DEPTH


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"finish_reason": {"slice": [1, 2]}}, "finish_reason is dict"),
        ({"output_text": 42}, "output_text is int"),
        ({"served_by": ["a"]}, "served_by is list"),
        ({"tokens": [TokenLogprob(5, -0.1)]}, r"tokens\[0\].token is int"),  # type: ignore[arg-type]
    ],
)
def test_a_wrong_type_is_refused_naming_the_field(
    store: Store, change: dict[str, Any], field: str
) -> None:
    run_id, suite_id = open_run(store)
    with pytest.raises(StoreError, match=f"probe 'greet-th' of endpoint 'gpu-a'.*{field}"):
        store.save_results(run_id, suite_id, [ok_record(index=1), replace(ok_record(), **change)])
    assert store.count_results() == 0  # one transaction: the runner then stores it alone


def test_registered_secrets_are_stored_scrubbed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    register_secret_envs([SECRET_ENV])
    run_id, suite_id = open_run(store)
    tokens = [TokenLogprob(f"t{i}", -0.1, {f"t{i}": -0.1}) for i in range(200)]
    echoed = ok_record(
        output_text=f"key {SECRET} back",
        served_by=SECRET,
        response_headers={"x-served-by": SECRET},
        error_detail=f"HTTP 401: bad key {SECRET}",
        tokens=[*tokens, TokenLogprob(SECRET, -1.0, {SECRET: -1.0})],
    )
    [result_id] = store.save_results(run_id, suite_id, [echoed])
    got = store.get_result(result_id)
    assert got.output_text == "key *** back" and got.served_by == "***"
    assert got.response_headers == {"x-served-by": "***"}
    assert got.error_detail == "HTTP 401: bad key ***"
    assert got.tokens is not None and got.tokens[:200] == tokens
    assert got.tokens[-1] == TokenLogprob("***", -1.0, {"***": -1.0})
    with store.engine.connect() as conn:
        assert SECRET not in repr(conn.execute(select(ResultRow)).all())


# --- rows written before the boundary --------------------------------------------------------

GREEDY = {"logprobs": True, "top_logprobs": 3, "max_tokens": 4}
OLD_SUITE = Suite(
    name="old",
    probes=[
        Probe(id="greedy", kind="topk", prompt="Return the number of", params=GREEDY),
        Probe(id="prose", kind="script", prompt="Say hello"),
    ],
)
#: What an old row held after NaN/±Infinity logprobs went through the JSON serializer.
OLD_TOKENS = [
    {"token": "Hello", "logprob": None, "top": {"Hello": None, "Hi": -1.0}, "token_id": None},
    {"token": " world", "logprob": -0.5, "top": {" world": None}, "token_id": None},
    {"token": None, "logprob": "nan", "top": None},
    "not a position",
]


def test_an_old_row_with_null_logprobs_reads_and_scores(store: Store) -> None:
    run_id, suite_id = open_run(store, OLD_SUITE)
    ids = store.save_results(run_id, suite_id, [hello_record("greedy"), hello_record("prose")])
    with store.engine.begin() as conn:  # as an old version of canary stored them
        conn.execute(
            update(ResultRow)
            .where(ResultRow.id.in_(ids))
            .values(response={"tokens": OLD_TOKENS, "usage": None, "headers": None})
        )
    got = store.get_result(ids[0])
    assert got.tokens == [
        TokenLogprob("Hello", None, {"Hi": -1.0}),
        TokenLogprob(" world", -0.5, {}),
        TokenLogprob("", None, {}),
        TokenLogprob("", None, {}),
    ]
    assert got.response_headers == {}
    # every detector, the reference model included
    report = score_stored(store, ResultFilter(run_ids=(run_id,)))
    assert report.results == 2
    assert report.scored.get("top1_agreement") == 1
    scores = {s.metric: s for s in store.get_result(ids[0]).scores}
    # Missing logprobs are no evidence: nothing judged them, so nothing is flagged on them.
    assert "greedy_not_argmax" not in scores
    assert not any(s.flagged for s in scores.values() if s.metric != "first_divergence")
