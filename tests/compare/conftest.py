"""Stored results with planted rates, written through the real store and scored for real."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord
from canary.scoring import score_stored
from canary.store import Store, open_store

T0 = datetime(2026, 11, 10, tzinfo=UTC)
PROSE = "The function returns the number of items in the list, or None when it is empty."
THAI = "The function returns the สวัสดี number of items in the list, or None when it is empty."

SUITE = Suite(
    name="canary-test",
    probes=[
        Probe(id="p1", kind="script", prompt="Describe it."),
        Probe(id="p2", kind="entropy", prompt="Explain it."),
    ],
)
ENDPOINTS = [
    EndpointConfig(name="gpu-a", base_url="http://a/v1", model="m", labels={"pool": "gpu-a"}),
    EndpointConfig(name="tpu-b", base_url="http://b/v1", model="m", labels={"pool": "tpu-b"}),
]

Writer = Callable[..., int]


@pytest.fixture
def store(any_db_url: str) -> Store:
    return open_store(any_db_url)


@pytest.fixture
def write_run(store: Store) -> Writer:
    """write_run(endpoint, n, bad_rate, start, suite=SUITE, seed=0) → run id (scored)."""

    def write(
        endpoint: str,
        n: int,
        bad_rate: float,
        start: datetime = T0,
        suite: Suite = SUITE,
        seed: int = 0,
    ) -> int:
        rng = random.Random(seed)
        suite_id = store.register_suite(suite)
        store.register_endpoints(ENDPOINTS)
        run_id = store.start_run(suite_id)
        labels = next(e for e in ENDPOINTS if e.name == endpoint).cohort_labels()
        records = [
            ResultRecord(
                endpoint=endpoint,
                probe_id=suite.probes[i % len(suite.probes)].id,
                repeat_index=i,
                session_id=f"{run_id}-{i}",
                labels={**labels, "load": "probe"},
                request={},
                started_at=start + timedelta(seconds=i),
                latency_ms=100 + rng.random() * 50,
                attempts=1,
                output_text=THAI if rng.random() < bad_rate else PROSE[: rng.randint(40, 80)],
                finish_reason="stop",
            )
            for i in range(n)
        ]
        for chunk in range(0, n, 5000):
            store.save_results(run_id, suite_id, records[chunk : chunk + 5000])
        store.finish_run(run_id)
        score_stored(store, ResultFilter(run_ids=(run_id,)), reference=False)
        return run_id

    return write
