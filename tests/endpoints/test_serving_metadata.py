"""Which stack answered: `system_fingerprint` and `record_headers` become per-result cohorts.

Replies come from the hostile server over real HTTP, through `run_once` into a real store, and
are read back as `canary cohorts` and `compare --by` see them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canary.compare import run_compare
from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.probes.model import Probe, Suite
from canary.runner.once import run_once
from canary.sanitize import one_line, register_secret_envs
from canary.store import Store, StoredResult
from tests.support.cli import invoke
from tests.support.hostile_server import HostileServer, Reply, serve_hostile

KEY_ENV = "CANARY_TEST_SERVING_KEY"
KEY = "sk-serving-0123456789"
SUITE = Suite(name="meta", probes=[Probe(id=f"p{i}", prompt=f"hello {i}") for i in range(4)])
LIMITS = Limits(max_retries=0, timeout_s=10, concurrency=2)


def chat_reply(fingerprint: Any, *headers: tuple[bytes, bytes]) -> Reply:
    body: dict[str, Any] = {
        "id": "chat-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello world"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }
    if fingerprint is not None:
        body["system_fingerprint"] = fingerprint
    return Reply(
        body=json.dumps(body).encode(), headers=((b"content-type", b"application/json"), *headers)
    )


POD_1 = chat_reply("fp_a", (b"x-served-by", b"pod-1"), (b"x-build", b"b7"))
POD_2 = chat_reply("fp_b", (b"x-served-by", b"pod-2"), (b"x-build", b"b7"))


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    monkeypatch.setenv(KEY_ENV, KEY)
    register_secret_envs([KEY_ENV])
    with serve_hostile() as server:
        yield server


def endpoint(server: HostileServer, name: str, replies: list[Reply], **kw: Any) -> EndpointConfig:
    server.script(name, replies)
    return EndpointConfig(
        name=name,
        base_url=server.base_url(name),
        model="m",
        labels={"pool": "gpu"},
        api_key_env=KEY_ENV,
        **kw,
    )


def one_round(store: Store, *endpoints: EndpointConfig) -> list[StoredResult]:
    fleet = FleetConfig(defaults=LIMITS, endpoints=list(endpoints))
    stored = run_once(fleet, SUITE, store, fleet.endpoints, handle_signals=False)
    return store.results_for_run(stored.run_id)


def test_fingerprint_and_recorded_headers_label_each_result(
    hostile: HostileServer, store: Store
) -> None:
    pods = endpoint(hostile, "pods", [POD_1, POD_2], record_headers=["X-Served-By", "x-build"])
    rows = one_round(store, pods)

    assert len(rows) == 4 and all(r.ok for r in rows)
    pairs = {(r.labels["x_served_by"], r.labels["system_fingerprint"]) for r in rows}
    assert pairs == {("pod-1", "fp_a"), ("pod-2", "fp_b")}  # each reply labels its own result
    for row in rows:
        assert row.labels["x_build"] == "b7"
        assert {k: row.labels[k] for k in ("pool", "endpoint", "model", "load")} == {
            "pool": "gpu",
            "endpoint": "pods",
            "model": "m",
            "load": "probe",
        }
        assert row.system_fingerprint == row.labels["system_fingerprint"]
        assert row.response_headers["x-build"] == "b7"
        assert row.served_by == row.labels["x_served_by"]  # served_by_headers still work
    assert store.results_in_window(labels={"x_served_by": "pod-2"}) == [
        r for r in rows if r.labels["x_served_by"] == "pod-2"
    ]


def test_cohorts_and_compare_split_by_serving_labels(
    hostile: HostileServer, store: Store, tmp_path: Path
) -> None:
    pods = endpoint(hostile, "pods", [POD_1, POD_2], record_headers=["x-served-by"])
    before = one_round(store, pods)[0].run_id
    after = one_round(store, pods)[0].run_id

    code, output = invoke("cohorts", "--json", "--db", store.url)
    assert code == 0, output
    cohorts = [c["labels"] for c in json.loads(output)["cohorts"]]
    assert sorted((c["x_served_by"], c["system_fingerprint"]) for c in cohorts) == [
        ("pod-1", "fp_a"),
        ("pod-2", "fp_b"),
    ]
    comparison = run_compare(
        store, f"run:{before}", f"run:{after}", by=["system_fingerprint"], suites=["meta"]
    )
    shown = json.dumps(comparison.to_dict())
    assert "system_fingerprint=fp_a" in shown and "system_fingerprint=fp_b" in shown


def test_hostile_serving_metadata_becomes_bounded_printable_labels(
    hostile: HostileServer, store: Store
) -> None:
    replies = [
        chat_reply("fp\n\x1b]0;title\x07" + "y" * 200, (b"x-served-by", b"\x1b[2Jpod\xff\xfe")),
        chat_reply(12345, (b"x-served-by", b"pool $KEY"), (b"x-build", b"x" * 4000)),
        chat_reply(["fp"], (b"x-served-by", b"   "), (b"x-build", b"b\xed\xa0\x80")),
        chat_reply("", (b"x-served-by", b"pod\tc")),
    ]
    rows = one_round(
        store, endpoint(hostile, "bad", replies, record_headers=["x-served-by", "x-build"])
    )

    assert len(rows) == 4 and all(r.ok for r in rows), [r.error_detail for r in rows]
    serving = {
        row.response_headers["x-served-by"]: (
            {k: v for k, v in row.labels.items() if k in ("x_served_by", "x_build")},
            row.labels.get("system_fingerprint"),
            row.system_fingerprint,
        )
        for row in rows
    }
    long_fp = "fp\n\x1b]0;title\x07" + "y" * 200
    assert serving == {
        # Escapes are shown, not kept; obs-text reads as Latin-1; values are cut at 64.
        "\x1b[2Jpod\xff\xfe": (
            {"x_served_by": "\\x1b[2Jpod\xff\xfe"},
            ("fp\\n\\x1b]0;title\\x07" + "y" * 200)[:64],
            long_fp,
        ),
        # The echoed key is scrubbed; a fingerprint that is not a string is none.
        "pool ***": ({"x_served_by": "pool ***", "x_build": "x" * 64}, None, None),
        # A blank header is no label; a C1 control is escaped.
        "": ({"x_build": "b\xed\xa0\\x80"}, None, None),
        # An empty fingerprint is none; a tab is escaped (labels are one line).
        "pod\tc": ({"x_served_by": "pod\\tc"}, None, None),
    }
    for labels, fingerprint, _ in serving.values():
        for value in [*labels.values(), fingerprint]:
            assert value is None or (value == one_line(value) and len(value) <= 64)
