"""Builders for suites, endpoints and result records shared by the store tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord, TokenLogprob
from canary.store import Store
from canary.store.reports import trend_rows
from canary.store.rollups import RollupSpec

T0 = datetime(2024, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_suite(name: str = "smoke", extra_probe: str | None = None) -> Suite:
    probes = [
        Probe(id="greet-th", kind="fixed", prompt="Say hello in Thai", expect={"contains": "สวัสดี"}),
        Probe(id="count", kind="determinism", prompt="Count to five", repeat=3),
    ]
    if extra_probe:
        probes.append(Probe(id=extra_probe, prompt="extra"))
    return Suite(name=name, description="store tests", probes=probes)


def make_endpoints() -> list[EndpointConfig]:
    return [
        EndpointConfig(name="gpu-a", base_url="http://a.test/v1", model="m1", labels={"pool": "a"}),
        EndpointConfig(
            name="gpu-b",
            base_url="http://b.test/v1",
            model="m1",
            labels={"pool": "b", "region": "ap-southeast"},
        ),
    ]


def labels_for(endpoint: str) -> dict[str, str]:
    pool = endpoint.rsplit("-", 1)[-1]
    extra = {"region": "ap-southeast"} if pool == "b" else {}
    return {"pool": pool, **extra, "endpoint": endpoint, "model": "m1", "load": "probe"}


def ok_record(endpoint: str = "gpu-a", index: int = 0, **changes: Any) -> ResultRecord:
    """A successful result with tokens, logprobs and non-ASCII text."""
    fields: dict[str, Any] = {
        "endpoint": endpoint,
        "probe_id": "greet-th",
        "repeat_index": index,
        "session_id": f"s-{index}",
        "labels": labels_for(endpoint),
        "request": {"model": "m1", "messages": [{"role": "user", "content": "Say hello 🦜"}]},
        "started_at": T0 + timedelta(seconds=index),
        "latency_ms": 123.5 + index,
        "attempts": 1,
        "status_code": 200,
        "served_by": f"{endpoint}-replica-1",
        "response_headers": {"x-served-by": f"{endpoint}-replica-1"},
        "output_text": "สวัสดี 🦜 ครับ",
        "finish_reason": "stop",
        "tokens": [
            TokenLogprob("สวัส", -0.25, {"สวัส": -0.25, "Hello": -1.5}, 101),
            TokenLogprob("ดี", -0.01, {"ดี": -0.01}, 102),
            TokenLogprob(" 🦜", None, {}, None),
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
    fields.update(changes)
    return ResultRecord(**fields)


def hello_record(probe_id: str, index: int = 0, **changes: Any) -> ResultRecord:
    """A bare success from gpu-a: "Hello world", one token; no usage, headers or served_by."""
    fields: dict[str, Any] = {
        "endpoint": "gpu-a",
        "probe_id": probe_id,
        "repeat_index": index,
        "session_id": f"s-{index}",
        "labels": labels_for("gpu-a"),
        "request": {},
        "started_at": T0,
        "latency_ms": 10.0,
        "attempts": 1,
        "status_code": 200,
        "output_text": "Hello world",
        "finish_reason": "stop",
        "tokens": [TokenLogprob("Hello", -0.1)],
    }
    fields.update(changes)
    return ResultRecord(**fields)


def error_record(endpoint: str = "gpu-b", index: int = 0) -> ResultRecord:
    """A failed request: no body, no tokens."""
    return ResultRecord(
        endpoint=endpoint,
        probe_id="count",
        repeat_index=index,
        session_id=f"e-{index}",
        labels=labels_for(endpoint),
        request={"model": "m1", "prompt": "Count to five"},
        started_at=T0 + timedelta(seconds=100 + index),
        latency_ms=30000.0,
        attempts=3,
        error_kind="timeout",
        error_detail="no response within 30 s",
    )


def batch(size: int, start: int = 0) -> list[ResultRecord]:
    """`size` results alternating endpoints, with 32 tokens each (a realistic row size)."""
    tokens = [TokenLogprob(f"t{i}", -0.1 * i, {f"t{i}": -0.1 * i, "x": -3.0}, i) for i in range(32)]
    return [ok_record("gpu-a" if i % 2 else "gpu-b", start + i, tokens=tokens) for i in range(size)]


@dataclass(frozen=True)
class RoundCount:
    """Flagged and total results of one run (round) × cohort × metric, by name."""

    run_id: int
    cohort_id: int
    metric: str
    at: datetime
    n: int
    k: int


def round_counts(
    store: Store,
    window: ResultFilter,
    cohort_ids: Sequence[int],
    scored: Sequence[str],
    *,
    errors_as: str | None = None,
    spec: RollupSpec | None = None,
) -> list[RoundCount]:
    """`trend_rows` per round, with named fields for the tests' arithmetic."""
    rows = trend_rows(store, window, cohort_ids, scored, errors_as=errors_as, spec=spec)
    return [RoundCount(run, cohort, metric, at, n, k) for _, run, cohort, metric, at, n, k in rows]
