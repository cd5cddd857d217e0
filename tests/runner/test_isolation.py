"""store_isolated against a real store: one unstorable record costs one error row; a store that
refuses everything raises instead of turning the round into error rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from canary.errors import NotFoundError
from canary.records import ResultRecord
from canary.runner.isolation import store_isolated, unstorable_record
from canary.store import Store, open_store
from tests.store.helpers import error_record, make_endpoints, make_suite, ok_record


@pytest.fixture
def store(any_db_url: str) -> Store:
    return open_store(any_db_url)


def writer(store: Store) -> tuple[int, Callable[[list[ResultRecord]], None]]:
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())
    run_id = store.start_run(suite_id, trigger="test")

    def write(records: list[ResultRecord]) -> None:
        store.save_results(run_id, suite_id, records)

    return run_id, write


def test_one_unstorable_record_costs_one_error_row(store: Store) -> None:
    run_id, write = writer(store)
    bad = replace(ok_record("gpu-b", 1), finish_reason={"slice": [1]})  # type: ignore[arg-type]
    batch = [ok_record("gpu-a", 0), bad, error_record("gpu-b", 2), ok_record("gpu-a", 3)]
    stored = store_isolated(write, batch)

    assert [r.repeat_index for r in stored] == [0, 1, 2, 3]
    results = {(r.endpoint, r.repeat_index): r for r in store.results_for_run(run_id)}
    assert len(results) == 4
    assert results[("gpu-a", 0)].output_text == batch[0].output_text
    assert results[("gpu-a", 3)].ok and results[("gpu-b", 2)].error_kind == "timeout"
    replaced = results[("gpu-b", 1)]
    assert replaced.error_kind == "malformed" and replaced.output_text is None
    assert replaced.error_detail is not None
    assert replaced.error_detail.startswith("could not store the reply: StoreError: ")
    assert "finish_reason is dict" in replaced.error_detail
    assert (replaced.session_id, replaced.latency_ms) == (bad.session_id, bad.latency_ms)


def test_a_single_unstorable_record_is_replaced(store: Store) -> None:
    run_id, write = writer(store)
    bad = replace(ok_record(), output_text=b"\xff")  # type: ignore[arg-type]
    [stored] = store_isolated(write, [bad])
    assert stored.error_kind == "malformed"
    [row] = store.results_for_run(run_id)
    assert row.error_detail == stored.error_detail


def test_a_store_that_refuses_everything_raises(store: Store) -> None:
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())

    def write(records: list[ResultRecord]) -> None:
        store.save_results(999, suite_id, records)  # no such run: every write fails

    with pytest.raises(NotFoundError, match="no run with id 999"):
        store_isolated(write, [ok_record("gpu-a", 0), ok_record("gpu-b", 1)])
    with pytest.raises(NotFoundError, match="no run with id 999"):
        store_isolated(write, [ok_record("gpu-a", 2)])
    assert store.count_results() == 0


def test_the_error_detail_is_one_scrubbed_line() -> None:
    record = unstorable_record(ok_record(), ValueError("first \x1b[2J line\nsecond line"))
    assert record.error_detail == "could not store the reply: ValueError: first \\x1b[2J line"
    long = unstorable_record(ok_record(), ValueError("x" * 2000))
    assert long.error_detail is not None and len(long.error_detail) == 500
    assert long.request == {} and long.tokens is None and long.response_headers == {}
