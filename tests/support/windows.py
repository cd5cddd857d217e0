"""A store with a healthy day-before and a later window of hostile outputs, for renderer tests.

The HTML report and the terminal-safety tests build the same store: one endpoint, one script
probe, 40 healthy results 30 hours ago and 20 hostile ones 2 hours ago, scored by the script
detector so the hostile window (Thai text) regresses and its outputs become evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord
from canary.scoring import score_stored
from canary.store import Store

__all__ = ["ENDPOINT", "store_windows"]

ENDPOINT = EndpointConfig(
    name="gpu-x", base_url="http://x.test/v1", model="m", labels={"pool": "a"}
)
HEALTHY_TEXT = "Hello there."


def _record(index: int, at: datetime, text: str, *, load: str, **changes: Any) -> ResultRecord:
    """Result `index` of a window starting `at`: `text` from ENDPOINT, in cohort load `load`."""
    fields: dict[str, Any] = {
        "endpoint": ENDPOINT.name,
        "probe_id": "hello",
        "repeat_index": index,
        "session_id": f"s-{at:%H}-{index}",
        "labels": {**ENDPOINT.cohort_labels(), "load": load},
        "request": {"model": "m", "prompt": "Say hello"},
        "started_at": at + timedelta(seconds=index),
        "latency_ms": 12.0,
        "attempts": 1,
        "status_code": 200,
        "output_text": text,
        "finish_reason": "stop",
    }
    fields.update(changes)
    return ResultRecord(**fields)


def store_windows(
    store: Store, *, suite: str, load: str, text: str, **hostile: Any
) -> tuple[datetime, list[int]]:
    """Store and score the healthy window, then 20 results of `text` (with fields `hostile`).

    Returns the time the windows are relative to and the ids of the hostile results.
    """
    probes = [Probe(id="hello", kind="script", prompt="Say hello")]
    suite_id = store.register_suite(Suite(name=suite, probes=probes))
    store.register_endpoints([ENDPOINT])
    now = datetime.now(UTC)
    ids: list[int] = []
    windows = ((now - timedelta(hours=30), HEALTHY_TEXT, 40, {}),
               (now - timedelta(hours=2), text, 20, hostile))  # fmt: skip
    for at, output, count, fields in windows:
        run_id = store.start_run(suite_id)
        records = [_record(i, at, output, load=load, **fields) for i in range(count)]
        ids = store.save_results(run_id, suite_id, records)
        store.finish_run(run_id)
        score_stored(store, ResultFilter(run_ids=(run_id,)), detectors=["script"], reference=False)
    return now, ids
