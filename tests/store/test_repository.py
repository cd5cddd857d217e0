"""Round trips through the store, identical on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, select

from canary.errors import NotFoundError, StoreError
from canary.records import ResultRecord, TokenLogprob
from canary.store import ScoreView, Store, StoredResult, open_store
from canary.store.models import CohortRow, ProbeRow
from canary.store.repository import cohort_fingerprint
from canary.store.scores import ScoreToSave, save_scores
from tests.store.helpers import T0, batch, error_record, make_endpoints, make_suite, ok_record


@pytest.fixture
def store(any_db_url: str) -> Store:
    return open_store(any_db_url)


def open_run(store: Store) -> tuple[int, int]:
    suite_id = store.register_suite(make_suite())
    store.register_endpoints(make_endpoints())
    return store.start_run(suite_id, trigger="test", selection={"endpoints": ["gpu-a"]}), suite_id


def expected(record: ResultRecord) -> dict[str, Any]:
    """What a stored result must read back as, from the record that was saved."""
    return {
        "probe_id": record.probe_id,
        "endpoint": record.endpoint,
        "labels": record.labels,
        "session_id": record.session_id,
        "repeat_index": record.repeat_index,
        "started_at": record.started_at.astimezone(UTC).isoformat(),
        "latency_ms": record.latency_ms,
        "attempts": record.attempts,
        "status_code": record.status_code,
        "error_kind": record.error_kind,
        "error_detail": record.error_detail,
        "served_by": record.served_by,
        "request": record.request,
        "output_text": record.output_text,
        "finish_reason": record.finish_reason,
        "tokens": None
        if record.tokens is None
        else [
            {
                "token": t.token,
                "logprob": t.logprob,
                "top": t.top,
                "token_id": t.token_id,
                "bytes": None if t.bytes is None else list(t.bytes),
            }
            for t in record.tokens
        ],
        "usage": record.usage,
        "response_headers": record.response_headers,
    }


def test_round_trip(store: Store) -> None:
    run_id, suite_id = open_run(store)
    bangkok = timezone(timedelta(hours=7))
    records = [
        ok_record("gpu-a", 0),
        ok_record("gpu-b", 1, started_at=(T0 + timedelta(seconds=1)).astimezone(bangkok)),
        error_record("gpu-b", 2),
    ]
    ids = store.save_results(run_id, suite_id, records)
    store.finish_run(run_id)

    assert len(ids) == 3 and ids == sorted(ids)
    for result_id, record in zip(ids, records, strict=True):
        stored = store.get_result(result_id)
        got = stored.to_dict()
        assert {k: got[k] for k in expected(record)} == expected(record)
        assert (stored.id, stored.run_id, stored.scores) == (result_id, run_id, [])
        assert (stored.suite, stored.suite_version) == ("smoke", make_suite().version)
        assert stored.started_at == record.started_at and stored.started_at.tzinfo is not None
        assert stored.tokens == record.tokens
    assert store.get_result(ids[0]).tokens == [
        TokenLogprob("สวัส", -0.25, {"สวัส": -0.25, "Hello": -1.5}, 101),
        TokenLogprob("ดี", -0.01, {"ดี": -0.01}, 102),
        TokenLogprob(" 🦜", None, {}, None),
    ]
    assert store.get_result(ids[2]).probe_kind == "determinism"
    assert [r.id for r in store.results_for_run(run_id)] == ids
    assert store.count_results() == 3

    [run] = store.list_runs()
    assert (run.id, run.suite, run.status, run.trigger, run.load_shape) == (
        run_id,
        "smoke",
        "completed",
        "test",
        "probe",
    )
    assert (run.n_results, run.n_errors, run.endpoints) == (3, 1, ["gpu-a", "gpu-b"])
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert store.get_run(run_id) == run
    assert run.to_dict()["started_at"] == run.started_at.isoformat()


def test_results_in_window_by_labels_and_time(store: Store) -> None:
    run_id, suite_id = open_run(store)
    records = [ok_record("gpu-a" if i % 2 else "gpu-b", i) for i in range(10)]
    store.save_results(run_id, suite_id, records)

    pool_a = store.results_in_window({"pool": "a"})
    assert [r.repeat_index for r in pool_a] == [1, 3, 5, 7, 9]
    assert all(r.endpoint == "gpu-a" for r in pool_a)
    region = store.results_in_window({"region": "ap-southeast", "model": "m1"})
    assert [r.repeat_index for r in region] == [0, 2, 4, 6, 8]
    window = store.results_in_window(
        since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=5)
    )
    assert [r.repeat_index for r in window] == [2, 3, 4]
    assert [r.repeat_index for r in store.results_in_window({"pool": "a"}, limit=2)] == [1, 3]
    assert store.results_in_window({"pool": "nowhere"}) == []
    assert len(store.results_in_window()) == 10


def test_one_cohort_per_label_set(store: Store) -> None:
    run_id, suite_id = open_run(store)
    store.save_results(run_id, suite_id, [ok_record("gpu-a", i) for i in range(3)])
    store.save_results(run_id, suite_id, [ok_record("gpu-a", 3), ok_record("gpu-b", 4)])
    with store.engine.connect() as conn:
        cohorts = conn.execute(select(CohortRow.fingerprint, CohortRow.labels)).all()
    assert len(cohorts) == 2
    assert {fp for fp, _ in cohorts} == {
        cohort_fingerprint(ok_record("gpu-a").labels),
        cohort_fingerprint(ok_record("gpu-b").labels),
    }
    reordered = dict(reversed(list(ok_record("gpu-a").labels.items())))
    assert cohort_fingerprint(reordered) == cohort_fingerprint(ok_record("gpu-a").labels)


def test_scores_are_read_back(store: Store) -> None:
    run_id, suite_id = open_run(store)
    [result_id] = store.save_results(run_id, suite_id, [ok_record()])
    save_scores(
        store,
        [
            ScoreToSave(result_id, "script", "1", "thai_ratio", 0.9, False, None),
            ScoreToSave(result_id, "exact", "2", "match", None, True, {"want": "ดี"}),
        ],
    )
    stored = store.get_result(result_id)
    assert stored.scores == [
        ScoreView("exact", "2", "match", None, True, {"want": "ดี"}),
        ScoreView("script", "1", "thai_ratio", 0.9, False, None),
    ]
    assert stored.to_dict()["scores"][0]["evidence"] == {"want": "ดี"}


def test_register_suite_is_idempotent_per_version(store: Store) -> None:
    first = store.register_suite(make_suite())
    assert store.register_suite(make_suite()) == first
    changed = store.register_suite(make_suite(extra_probe="new"))
    assert changed != first
    with store.engine.connect() as conn:
        keys = (
            conn.execute(
                select(ProbeRow.probe_key).where(ProbeRow.suite_id == changed).order_by(ProbeRow.id)
            )
            .scalars()
            .all()
        )
    assert keys == ["greet-th", "count", "new"]


def test_register_endpoints_upserts_by_name(store: Store) -> None:
    ids = store.register_endpoints(make_endpoints())
    assert sorted(ids) == ["gpu-a", "gpu-b"]
    moved = make_endpoints()[0].model_copy(update={"base_url": "http://new.test/v1"})
    assert store.register_endpoints([moved]) == {"gpu-a": ids["gpu-a"]}
    assert store.register_endpoints([]) == {}


def test_a_bad_record_writes_nothing_of_its_batch(store: Store) -> None:
    run_id, suite_id = open_run(store)
    store.save_results(run_id, suite_id, [ok_record("gpu-a", 0)])
    new_cohort = {"pool": "z", "endpoint": "gpu-a", "model": "m1", "load": "probe"}
    bad = [ok_record("gpu-a", 1, labels=new_cohort), ok_record("gpu-a", 2, probe_id="gone")]
    with pytest.raises(StoreError, match="probe 'gone'"):
        store.save_results(run_id, suite_id, bad)
    # A failure inside the database (NOT NULL) also rolls back the cohort made for the batch.
    broken = [ok_record("gpu-a", 3, labels=new_cohort), ok_record("gpu-a", 4, latency_ms=None)]
    with pytest.raises(StoreError, match=f"cannot save results of run {run_id}"):
        store.save_results(run_id, suite_id, broken)
    assert store.count_results() == 1
    assert store.results_in_window({"pool": "z"}) == []
    with store.engine.connect() as conn:
        assert len(conn.execute(select(CohortRow.id)).all()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpoint": "unknown"}, "endpoint 'unknown', which is not registered"),
        ({"started_at": datetime(2024, 1, 1)}, "naive started_at"),
    ],
)
def test_invalid_records_are_refused(store: Store, change: dict[str, Any], message: str) -> None:
    run_id, suite_id = open_run(store)
    with pytest.raises(StoreError, match=message):
        store.save_results(run_id, suite_id, [replace(ok_record(), **change)])


def test_broken_endpoint_output_is_stored_not_lost(store: Store) -> None:
    """NUL bytes, infinite logprobs and over-long headers would fail a PostgreSQL insert."""
    run_id, suite_id = open_run(store)
    weird = ok_record(
        output_text="a\x00b",
        tokens=[TokenLogprob("a", float("-inf"), {"a": float("-inf")})],
        served_by="x" * 300,
        finish_reason="f" * 40,
    )
    [result_id] = store.save_results(run_id, suite_id, [weird])
    stored = store.get_result(result_id)
    assert stored.output_text == "a\ufffdb"
    # A non-finite logprob is missing (None); an alternative without a finite value is dropped.
    assert stored.tokens == [TokenLogprob("a", None, {})]
    assert stored.served_by == "x" * 255 and stored.finish_reason == "f" * 32


def test_missing_things_are_not_found(store: Store) -> None:
    with pytest.raises(
        NotFoundError, match="no result with id 99; list results with `canary runs`"
    ):
        store.get_result(99)
    with pytest.raises(NotFoundError, match="no run with id 7"):
        store.get_run(7)
    with pytest.raises(NotFoundError, match="no run with id 7"):
        store.finish_run(7)
    with pytest.raises(NotFoundError, match="no suite with id 5"):
        store.start_run(5)
    with pytest.raises(StoreError, match="not final"):
        store.finish_run(1, "done")
    assert store.save_results(1, 1, []) == []


def test_list_runs_newest_first_and_by_suite(store: Store) -> None:
    smoke = store.register_suite(make_suite())
    other = store.register_suite(make_suite(name="other"))
    store.register_endpoints(make_endpoints())
    first = store.start_run(smoke)
    second = store.start_run(other, load_shape="burst")
    third = store.start_run(smoke)
    store.save_results(first, smoke, batch(4))
    assert [r.id for r in store.list_runs()] == [third, second, first]
    assert [r.id for r in store.list_runs(1)] == [third]
    assert [r.id for r in store.list_runs(suite="smoke")] == [third, first]
    by_id = {r.id: r for r in store.list_runs()}
    assert (by_id[first].n_results, by_id[first].endpoints) == (4, ["gpu-a", "gpu-b"])
    assert (by_id[second].n_results, by_id[second].endpoints, by_id[second].status) == (
        0,
        [],
        "running",
    )


def test_ten_thousand_results_in_one_call(store: Store) -> None:
    """Bulk insert with RETURNING: 10k results must not take a row-at-a-time round trip.

    Counted in statements the database receives, not seconds (`benchmarks/` has the speed).
    """
    run_id, suite_id = open_run(store)
    records = batch(10_000)
    inserts: list[str] = []
    commits: list[object] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RESULTS"):
            inserts.append(statement)

    def committed(conn: Any) -> None:
        commits.append(conn)

    event.listen(store.engine, "before_cursor_execute", seen)
    event.listen(store.engine, "commit", committed)
    try:
        ids = store.save_results(run_id, suite_id, records)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
        event.remove(store.engine, "commit", committed)
    assert len(set(ids)) == 10_000 and ids == sorted(ids)
    assert store.get_result(ids[-1]).repeat_index == 9_999
    assert store.get_run(run_id).n_results == 10_000
    assert len(commits) == 1, "one batch, one transaction"
    if store.engine.dialect.name == "postgresql":
        # Over the network: multi-row INSERT … RETURNING pages (~1,000 rows), never row by row.
        # (SQLite is in-process, where SQLAlchemy runs one INSERT per row: no round trips.)
        assert 1 <= len(inserts) <= 50, f"{len(inserts)} INSERT statements for 10k results"


def test_stored_result_is_frozen(store: Store) -> None:
    run_id, suite_id = open_run(store)
    [result_id] = store.save_results(run_id, suite_id, [ok_record()])
    stored: StoredResult = store.get_result(result_id)
    with pytest.raises(AttributeError):
        stored.latency_ms = 1.0  # type: ignore[misc]


def test_concurrent_writers_share_new_cohorts(store: Store) -> None:
    """Writers racing to create the same new cohorts all succeed, and each cohort exists once."""
    from concurrent.futures import ThreadPoolExecutor

    run_id, suite_id = open_run(store)

    def write(worker: int) -> int:
        saved = 0
        for round_ in range(5):
            labels = {"pool": f"p{round_}", "endpoint": "gpu-a", "model": "m1", "load": "burst"}
            records = [ok_record("gpu-a", worker * 100 + i, labels=labels) for i in range(20)]
            saved += len(store.save_results(run_id, suite_id, records))
        return saved

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(write, range(4))) == [100] * 4
    with store.engine.connect() as conn:
        assert len(conn.execute(select(CohortRow.id)).all()) == 5
    assert len(store.results_in_window({"pool": "p3"})) == 80
