"""One round against a healthy endpoint and one endpoint per hostile reply, on both databases.

Every healthy row is stored, every hostile request is exactly one row, nothing stored holds the
API key or a character a database refuses, and scoring what was stored (every detector, the
reference model included) does not raise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from canary.config.fleet import EndpointConfig, FleetConfig, Limits
from canary.endpoints import OpenAIChat, ParsedOutput, flavours
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter
from canary.runner.once import run_once
from canary.scoring import score_stored
from canary.store import Store, open_store
from canary.store.models import ResultRow
from tests.support.hostile_server import HostileServer, scenario, serve_hostile
from tests.support.openai_server import FakeOpenAI, serve_openai

KEY_ENV = "CANARY_TEST_HOSTILE_KEY"
KEY = "sk-test-0123456789abcdef"
LIMITS = Limits(
    timeout_s=5.0,
    connect_timeout_s=2.0,
    max_retries=0,
    backoff_s=0.01,
    backoff_max_s=0.05,
    max_response_bytes=4 * 1024 * 1024,
)
GREEDY = {"logprobs": True, "top_logprobs": 3, "max_tokens": 4}
SUITE = Suite(
    name="hostile",
    probes=[
        Probe(id="greedy", kind="topk", prompt="Say hello", params=GREEDY, repeat=2),
        Probe(id="prose", kind="script", prompt="Say hello"),
    ],
)
PER_ENDPOINT = 3
#: The `tests.support.hostile_server` scenarios this round sends, each to its own endpoint (named
#: after it) in the wire format given.
CASES = {
    name: "openai-chat"
    for name in (
        "surrogate_text",
        "surrogate_token",
        "surrogate_header",
        "finish_object",
        "nonfinite_logprobs",
        "deep_json",
        "deep_usage",
        "echoed_key_text",
        "echoed_key_header",
        "nul_text",
        "token_not_string",
        "content_object",
    )
} | {"surrogate_top_key": "openai-completions"}
#: Cases the adapters classify as `malformed`; every other case is stored as a success.
MALFORMED = {"finish_object", "deep_json", "token_not_string", "content_object"}


class CarelessFlavour(OpenAIChat):
    """A third-party flavour that hands the store a value of the wrong type."""

    def parse_response(self, body: dict[str, Any]) -> ParsedOutput:
        parsed = super().parse_response(body)
        return ParsedOutput(text=parsed.text, finish_reason={"not": "text"})  # type: ignore[arg-type]


class CrashingFlavour(OpenAIChat):
    """A third-party flavour with a bug outside the parsing `send` guards."""

    def build_request(self, probe: Probe, session_id: str) -> dict[str, Any]:
        raise RuntimeError("plugin bug")


@pytest.fixture
def plugin_flavours() -> Iterator[None]:
    flavours.register("test-careless")(CarelessFlavour)
    flavours.register("test-crashing")(CrashingFlavour)
    yield
    flavours.unregister("test-careless")
    flavours.unregister("test-crashing")


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAI, HostileServer]]:
    with serve_openai() as healthy, serve_hostile() as hostile:
        yield healthy, hostile


def fleet(healthy: FakeOpenAI, hostile: HostileServer) -> FleetConfig:
    endpoints = [EndpointConfig(name="healthy", base_url=healthy.base_url, model="m")]
    for case, flavour in CASES.items():
        name = endpoint_name(case)
        hostile.script(name, scenario(case, chat=flavour == "openai-chat"))
        endpoints.append(
            EndpointConfig(
                name=name,
                base_url=hostile.base_url(name),
                model="m",
                flavour=flavour,
                api_key_env=KEY_ENV,
            )
        )
    for name in ("test-careless", "test-crashing"):
        endpoints.append(
            EndpointConfig(name=name, base_url=healthy.base_url, model="m", flavour=name)
        )
    return FleetConfig(endpoints=endpoints, defaults=LIMITS)


def endpoint_name(case: str) -> str:
    return case.replace("_", "-")


def stored_text(store: Store) -> str:
    """Every column an endpoint's bytes reach, of every row, as one text."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                ResultRow.output_text,
                ResultRow.served_by,
                ResultRow.error_detail,
                ResultRow.finish_reason,
                ResultRow.response,
                ResultRow.request,
            )
        ).all()
    return repr(rows)


def test_a_hostile_round_stores_one_row_per_request(
    any_db_url: str,
    servers: tuple[FakeOpenAI, HostileServer],
    plugin_flavours: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    healthy, hostile = servers
    config = fleet(healthy, hostile)
    store = open_store(any_db_url)
    stored = run_once(config, SUITE, store, config.endpoints, handle_signals=False)

    results = store.results_for_run(stored.run_id)
    per_endpoint = Counter(r.endpoint for r in results)
    assert per_endpoint == {e.name: PER_ENDPOINT for e in config.endpoints}
    assert stored.status == "completed"
    assert stored.summary.sent == len(results)
    for case in CASES:
        assert hostile.count(endpoint_name(case)) == PER_ENDPOINT, case  # no retries configured
    rows: dict[str, list[Any]] = {}
    for r in results:
        rows.setdefault(r.endpoint, []).append(r)
    by_case = {case: rows[endpoint_name(case)] for case in CASES}

    assert all(r.ok for r in rows["healthy"])
    assert all(r.tokens for r in rows["healthy"] if r.probe_id == "greedy")
    for case in MALFORMED:
        assert {r.error_kind for r in by_case[case]} == {"malformed"}, case
    for case in set(CASES) - MALFORMED:
        assert all(r.ok for r in by_case[case]), (case, [r.error_detail for r in by_case[case]])
    assert "nested too deeply" in (by_case["deep_json"][0].error_detail or "")

    # Lone surrogates and NUL are stored as U+FFFD, the same on both databases.
    assert {r.output_text for r in by_case["surrogate_text"]} == {"a\ufffdb \ufffd"}
    assert {r.output_text for r in by_case["nul_text"]} == {"a\ufffdb"}
    surrogate_tokens = {tuple(t.token for t in r.tokens or []) for r in by_case["surrogate_token"]}
    assert surrogate_tokens == {("\ufffd", " \ufffdx")}
    tops = [r.tokens[0].top for r in by_case["surrogate_top_key"] if r.tokens]
    assert tops and all(top == {"\ufffd": -1.0, "Hi": -2.0} for top in tops)
    assert all(r.served_by and "\ufffd" not in r.served_by for r in by_case["surrogate_header"])

    # Non-finite logprobs are missing (None); non-finite and non-numeric alternatives are gone.
    nan_tokens = [r.tokens for r in by_case["nonfinite_logprobs"] if r.tokens]
    assert nan_tokens
    for tokens in nan_tokens:
        assert [t.logprob for t in tokens] == [None, None, None]
        assert [t.top for t in tokens] == [{}, {"z": -1.0}, {}]

    # The echoed API key is scrubbed from the text and the served-by header.
    assert all("***" in (r.output_text or "") for r in by_case["echoed_key_text"])
    assert {r.served_by for r in by_case["echoed_key_header"]} == {"pool ***"}
    assert KEY not in stored_text(store)

    # A flavour's wrong type costs its own rows (one each), never the batch.
    careless = rows["test-careless"]
    assert {r.error_kind for r in careless} == {"malformed"}
    assert all(
        (r.error_detail or "").startswith("could not store the reply: StoreError") for r in careless
    )
    crashing = rows["test-crashing"]
    assert {r.error_kind for r in crashing} == {"malformed"}
    assert all("plugin bug" in (r.error_detail or "") for r in crashing)
    assert stored.summary.endpoint("test-careless").errors == {"malformed": PER_ENDPOINT}

    # Scoring what was stored, with every detector and the reference model, does not raise.
    report = score_stored(store, ResultFilter(run_ids=(stored.run_id,)))
    assert report.results == len(results)
    assert report.scored.get("top1_agreement", 0) > 0
    store.close()
