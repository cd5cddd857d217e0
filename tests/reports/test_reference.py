"""The grid against its reference: a cohort measured differently is left untested on its own,
and without alerts the newest stored baseline is the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from canary.compare.aggregate import cohort_key
from canary.compare.baselines import capture_baseline, load_baseline
from canary.config.fleet import EndpointConfig
from canary.errors import NotFoundError
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord
from canary.reports import build_report
from canary.scoring import score_stored
from canary.store import Store, open_store

BY = ("endpoint", "load")
A = EndpointConfig(name="gpu-a", base_url="http://a.test/v1", model="m", labels={"pool": "a"})
B = EndpointConfig(name="gpu-b", base_url="http://b.test/v1", model="m", labels={"pool": "b"})
OLD = Suite(name="s", probes=[Probe(id="hello", kind="script", prompt="Say hello")])
NEW = Suite(name="s", probes=[Probe(id="hello", kind="script", prompt="Say hello again")])


def _key(endpoint: EndpointConfig) -> str:
    return cohort_key({**endpoint.cohort_labels(), "load": "probe"}, BY)


def _store(url: str) -> tuple[Store, datetime]:
    """Both endpoints ran suite OLD 30 hours ago; in the last day B ran OLD again and A ran the
    changed suite NEW."""
    store = open_store(url)
    store.register_endpoints([A, B])
    now = datetime.now(UTC)
    for suite, endpoints, at in (
        (OLD, [A, B], now - timedelta(hours=30)),
        (OLD, [B], now - timedelta(hours=2)),
        (NEW, [A], now - timedelta(hours=2)),
    ):
        suite_id = store.register_suite(suite)
        run_id = store.start_run(suite_id)
        records = [_record(e, i, at) for e in endpoints for i in range(30)]
        store.save_results(run_id, suite_id, records)
        store.finish_run(run_id)
        score_stored(store, ResultFilter(run_ids=(run_id,)), detectors=["script"], reference=False)
    return store, now


def _record(endpoint: EndpointConfig, index: int, at: datetime) -> ResultRecord:
    return ResultRecord(
        endpoint=endpoint.name,
        probe_id="hello",
        repeat_index=index,
        session_id=f"{endpoint.name}-{at:%H}-{index}",
        labels={**endpoint.cohort_labels(), "load": "probe"},
        request={"model": "m", "prompt": "Say hello"},
        started_at=at + timedelta(seconds=index),
        latency_ms=12.0,
        attempts=1,
        status_code=200,
        output_text="Hello there.",
        finish_reason="stop",
    )


def test_a_cohort_measured_differently_costs_only_itself(sqlite_url: str) -> None:
    store, _ = _store(sqlite_url)
    report = build_report(store)
    assert report.reference.startswith("earlier window")
    (note,) = [n for n in report.notes if "not tested against the reference" in n]
    assert note.startswith(f"{_key(A)}: ") and "suite 's' ran as version" in note
    tested = {c.cohort for c in report.cells if c.verdict is not None}
    assert tested == {_key(B)}
    assert all(c.verdict is not None for c in report.cells if c.cohort == _key(B))


def test_the_newest_baseline_is_the_reference_without_alerts(sqlite_url: str) -> None:
    store, now = _store(sqlite_url)
    earlier = ResultFilter(since=now - timedelta(hours=48), until=now - timedelta(hours=24))
    for name in ("first", "second"):
        capture_baseline(store, name, earlier, BY)
    assert build_report(store).reference == "baseline second"
    with pytest.raises(NotFoundError, match=r"known: first, second"):
        load_baseline(store, "third")
