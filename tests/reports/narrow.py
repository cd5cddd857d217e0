"""Stored rounds with long endpoint names, and reading tables back out of an 80-column
rendering: a wrapped cell is still its text."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord
from canary.scoring import score_stored
from canary.store import Store

_RULES = "│┃"
ENDPOINTS = [
    EndpointConfig(name=name, base_url=f"http://{i}.test/v1", model="m", labels={"pool": name[:8]})
    for i, name in enumerate(
        ("gpu-fp32-us-east-1a-replica-07", "tpu-bf16-europe-west4-b-12", "long-ctx-3")
    )
]
SUITE = Suite(
    name="narrow",
    probes=[
        Probe(id="p1", kind="script", prompt="Describe it."),
        Probe(id="p2", kind="entropy", prompt="Explain it."),
    ],
)
PROSE = "The function returns the number of items in the list, or None when it is empty."
THAI = "The function returns the สวัสดี number of items."


def write_round(store: Store, at: datetime, thai_every: int, suite: Suite = SUITE) -> int:
    """A scored run of ``suite`` on every endpoint at ``at``: Thai on tpu every n-th result."""
    suite_id = store.register_suite(suite)
    run_id = store.start_run(suite_id)
    records = [
        ResultRecord(
            endpoint=e.name,
            probe_id=suite.probes[i % len(suite.probes)].id,
            repeat_index=i,
            session_id=f"{run_id}-{e.name}-{i}",
            labels={**e.cohort_labels(), "load": "probe"},
            request={},
            started_at=at + timedelta(seconds=i),
            latency_ms=100.0,
            attempts=1,
            output_text=THAI if thai_every and e is ENDPOINTS[1] and i % thai_every == 0 else PROSE,
            finish_reason="stop",
        )
        for e in ENDPOINTS
        for i in range(60)
    ]
    store.save_results(run_id, suite_id, records)
    store.finish_run(run_id)
    score_stored(store, ResultFilter(run_ids=(run_id,)), reference=False)
    return run_id


def table_columns(text: str) -> list[list[str]]:
    """Per rich table in ``text``, each column's text: its lines joined (header and cells in
    order) with the spaces wrapping put in removed, so a value that wrapped reads whole."""
    tables: list[list[str]] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line and line[0] in _RULES:
            block.append(line)
        elif block and not (line and line[0] in "┡├╇┼"):
            tables.append(_columns(block))
            block = []
    return tables


def _columns(lines: list[str]) -> list[str]:
    edges = [i for i, ch in enumerate(lines[0]) if ch in _RULES]
    parts = ["".join(line[a + 1 : b].strip() for line in lines) for a, b in pairwise(edges)]
    return [part.replace(" ", "") for part in parts]


def shown_whole(text: str, value: str) -> bool:
    """Whether ``value`` reads whole in one column of a table of ``text`` (wraps allowed)."""
    wanted = value.replace(" ", "")
    return any(wanted in column for table in table_columns(text) for column in table)
