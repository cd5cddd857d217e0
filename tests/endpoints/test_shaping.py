"""Per-endpoint request shaping over real HTTP: extra_body, drop_params, headers, auth style."""

from __future__ import annotations

from typing import Any

import pytest

from canary.config.fleet import EndpointConfig, Limits
from canary.endpoints import make_client
from canary.probes.model import Probe
from canary.records import ResultRecord
from tests.support.openai_server import FakeOpenAI

FLAVOURS = ["openai-completions", "openai-chat"]
KEY_ENV = "CANARY_TEST_SHAPING_KEY"
KEY = "sk-shaping-0123456789"
LIMITS = Limits(max_retries=0, timeout_s=10)
PROBE = Probe(id="p", prompt="hi", params={"top_k": 4, "seed": 9, "stop": ["\n"]})


async def send(server: FakeOpenAI, flavour: str = "openai-chat", **kw: Any) -> ResultRecord:
    config = EndpointConfig(name="e", base_url=server.base_url, flavour=flavour, model="m", **kw)
    async with make_client(config, LIMITS) as client:
        return await client.send(PROBE, session_id="sid", labels={"endpoint": "e"})


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_extra_body_is_merged_and_drop_params_removed(
    server: FakeOpenAI, flavour: str
) -> None:
    record = await send(
        server,
        flavour,
        extra_body={"repetition_penalty": 1.0, "min_p": 0.0, "generation_config": {"x": [1]}},
        drop_params=["top_k", "seed", "user"],
    )
    assert record.ok, record.error_detail
    (seen,) = server.requests
    assert seen.body == record.request  # what is stored is what was sent
    assert seen.body["repetition_penalty"] == 1.0 and seen.body["min_p"] == 0.0
    assert seen.body["generation_config"] == {"x": [1]}
    assert not {"top_k", "seed", "user"} & set(seen.body)
    assert seen.body["stop"] == ["\n"] and seen.body["model"] == "m"


async def test_without_shaping_the_body_is_canarys_own(server: FakeOpenAI) -> None:
    await send(server)
    (seen,) = server.requests
    assert (seen.body["top_k"], seen.body["seed"], seen.body["user"]) == (4, 9, "sid")
    assert "repetition_penalty" not in seen.body


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (None, "authorization", f"Bearer {KEY}"),
        ("bearer", "authorization", f"Bearer {KEY}"),
        ("x-api-key", "x-api-key", KEY),
    ],
)
async def test_auth_style_decides_the_key_header(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, auth: str | None, header: str, value: str
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    record = await send(server, auth=auth, api_key_env=KEY_ENV)
    assert record.ok, record.error_detail
    (seen,) = server.requests
    assert seen.headers[header] == value
    other = {"authorization", "x-api-key"} - {header}
    assert not other & set(seen.headers)


async def test_auth_none_sends_no_key(server: FakeOpenAI) -> None:
    record = await send(server, auth="none")
    assert record.ok, record.error_detail
    (seen,) = server.requests
    assert not {"authorization", "x-api-key"} & set(seen.headers)


async def test_configured_headers_are_sent_and_override_canarys(server: FakeOpenAI) -> None:
    await send(server, headers={"X-Tenant": "team-a", "user-agent": "my-probe/1"})
    (seen,) = server.requests
    assert seen.headers["x-tenant"] == "team-a"
    assert seen.headers["user-agent"] == "my-probe/1"  # one value, not "canary, my-probe/1"
