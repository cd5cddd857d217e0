"""Issue 14's "Done when", through the CLI: one round against the simulated fleet (healthy) and
one endpoint per hostile reply loses no row, exits 0 or 5 without a traceback, and `canary show`
of any hostile output puts no escape sequence, bidi control, live markup or echoed key on the
terminal."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.config.fleet import EndpointConfig
from canary.sim.embedded import embedded_fleet
from canary.store import StoredResult, open_store
from tests.support.cli import invoke, write_suite
from tests.support.hostile_server import SCENARIOS, HostileServer, scenario, serve_hostile

pytestmark = pytest.mark.slow  # minutes, not seconds; the default `pytest` still runs it

#: Wide, so rich wraps no output line and a literal check sees each value whole.
WIDE = {"COLUMNS": "250"}
KEY_ENV = "CANARY_HOSTILE_API_KEY"
KEY = "sk-hostile-5d4c3b2a1f0e"
SUITE_ROWS = [
    {"id": "hello", "prompt": "Return the number of", "params": {"max_tokens": 8}},
    {
        "id": "topk",
        "kind": "topk",
        "prompt": "This module provides",
        "params": {"temperature": 0.0, "max_tokens": 8, "logprobs": True, "top_logprobs": 3},
    },
    {
        "id": "chat",
        "messages": [{"role": "user", "content": "Say hi"}],
        "params": {"max_tokens": 8},
    },
]
#: Characters that must never reach a terminal from `canary show`: ESC, CSI and bidi controls.
_FORBIDDEN = re.compile("[\x1b\x9b\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def healthy() -> Iterator[EndpointConfig]:
    with embedded_fleet() as fleet:
        yield fleet.endpoint("gpu-fp32")


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with serve_hostile() as server:
        yield server


def _hostile_names() -> list[tuple[str, str, str]]:
    """(endpoint name, scenario, flavour) for every scenario in both wire formats."""
    return [
        (f"{name.replace('_', '-')}-{flavour.removeprefix('openai-')}", name, flavour)
        for name in SCENARIOS
        for flavour in ("openai-completions", "openai-chat")
    ]


@pytest.fixture
def fleet_file(
    tmp_path: Path,
    healthy: EndpointConfig,
    hostile: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.setenv(KEY_ENV, KEY)
    hostile.reset()
    lines = [
        "defaults: {max_retries: 0, timeout_s: 30}",
        "endpoints:",
        f"  - name: {healthy.name}",
        f"    base_url: {healthy.base_url}",
        f"    flavour: {healthy.flavour}",
        f"    model: {healthy.model}",
        "    labels: {pool: healthy}",
    ]
    for name, kind, flavour in _hostile_names():
        hostile.script(name, scenario(kind, chat=flavour == "openai-chat"))
        lines += [
            f"  - name: {name}",
            f"    base_url: {hostile.base_url(name)}",
            f"    flavour: {flavour}",
            "    model: m",
            f"    api_key_env: {KEY_ENV}",
            "    labels: {pool: hostile}",
        ]
    path = tmp_path / "fleet.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    return write_suite(tmp_path / "hostile.jsonl", SUITE_ROWS)


def _stored_texts(row: StoredResult) -> list[str]:
    texts = [row.output_text, row.error_detail, row.served_by, row.finish_reason]
    texts += list(row.response_headers.values())
    for token in row.tokens or []:
        texts += [token.token, *token.top]
    return [t for t in texts if t is not None]


def test_a_hostile_round_stores_every_row_and_shows_them_inert(
    any_db_url: str, fleet_file: Path, suite_file: Path, hostile: HostileServer
) -> None:
    code, out = invoke(
        "run", "--fleet", str(fleet_file), "--suite", str(suite_file), "--db", any_db_url, env=WIDE
    )
    assert code in (0, 5), out
    assert "Traceback" not in out, out

    store = open_store(any_db_url)
    (run,) = store.list_runs()
    assert run.status == "completed"
    rows = store.results_for_run(run.id)
    per_endpoint = Counter(r.endpoint for r in rows)
    healthy_rows = [r for r in rows if r.labels.get("pool") == "healthy"]
    assert len(healthy_rows) == len(SUITE_ROWS)
    assert all(r.ok and r.output_text for r in healthy_rows), [r.error_detail for r in rows]
    for name, _, _ in _hostile_names():
        # One row per request (no retries are configured), whatever the reply was.
        assert per_endpoint[name] == len(SUITE_ROWS) == hostile.count(name), name
    assert len(rows) == len(SUITE_ROWS) * (1 + len(_hostile_names()))
    for row in rows:
        for text in _stored_texts(row):
            assert KEY not in text, (row.endpoint, "echoed API key stored")

    shown_escapes = False
    for row in rows:
        if row.labels.get("pool") != "hostile" or row.probe_id != "topk":
            continue  # one row per endpoint: the one with a token table
        code, out = invoke("show", str(row.id), "--db", any_db_url, env=WIDE)
        assert code == 0, (row.endpoint, out)
        assert "Traceback" not in out
        assert not _FORBIDDEN.search(out), (row.endpoint, ascii(out))
        assert KEY not in out, row.endpoint
        for line in out.splitlines():
            assert not re.match(r"^\W*gate: PASS", line), (row.endpoint, line)
        if row.endpoint.startswith(("terminal-escapes", "terminal-tokens")):
            shown_escapes = True
            # Shown, as visible escapes and as the text it is: markup never interpreted.
            assert "\\x1b" in out and "[link=http://evil.example]" in out, (row.endpoint, out)
    assert shown_escapes
