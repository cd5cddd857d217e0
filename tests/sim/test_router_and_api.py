"""Front door, OpenAI wire format and admin validation, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from canary.cli.sim import app as sim_app
from canary.errors import ConfigError
from canary.sim.fleetconfig import load_sim_fleet
from canary.sim.router import FrontDoor
from canary.sim.server import RunningFleet


@pytest.fixture
def router_settings(fleet: RunningFleet) -> Iterator[str]:
    url = f"{fleet.base_url}/admin/router"
    yield url
    httpx.put(url, json={"misroute_share": 0.0, "served_by_header": False})


def _pool_of(fleet: RunningFleet, session: str) -> str:
    response = httpx.post(
        f"{fleet.base_url}/v1/completions",
        json={"prompt": "Hello there", "max_tokens": 1, "temperature": 0},
        headers={"x-session-id": session},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.headers["x-served-pool"]


def test_served_by_header_is_off_by_default(fleet: RunningFleet) -> None:
    response = httpx.post(
        f"{fleet.base_url}/v1/completions", json={"prompt": "Hi", "max_tokens": 1}
    )
    assert response.status_code == 200
    assert "x-served-pool" not in response.headers


def test_misrouting_share_is_sticky_and_monotonic(
    fleet: RunningFleet, router_settings: str
) -> None:
    share, n = 0.3, 150
    put = httpx.put(router_settings, json={"misroute_share": share, "served_by_header": True})
    assert put.status_code == 200, put.text
    sessions = [f"session-{i}" for i in range(n)]
    first = {s: _pool_of(fleet, s) for s in sessions}
    misrouted = {s for s, pool in first.items() if pool == "long-ctx"}
    sd = (share * (1 - share) / n) ** 0.5
    assert abs(len(misrouted) / n - share) < 4 * sd
    for s in sessions[:20]:
        assert _pool_of(fleet, s) == first[s], "routing is not sticky"
    assert httpx.put(router_settings, json={"misroute_share": 0.6}).status_code == 200
    again = {s for s in sessions[:60] if _pool_of(fleet, s) == "long-ctx"}
    assert misrouted & set(sessions[:60]) <= again


def test_front_door_sends_long_prompts_to_long_pool() -> None:
    door = FrontDoor(["a", "b"], "long", misroute_share=0.0, short_context_max_tokens=100)
    assert door.route("s", 101).reason == "long"
    assert door.route("s", 10).pool in {"a", "b"}
    assert {door.route(None, 10).pool for _ in range(4)} == {"a", "b"}


def test_completion_and_chat_wire_format(fleet: RunningFleet) -> None:
    base = fleet.pool_url("gpu-fp32")
    legacy = httpx.post(
        f"{base}/completions",
        json={"model": "canary-tiny", "prompt": "Hello", "max_tokens": 3, "logprobs": 2},
    ).json()
    lp = legacy["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == 3
    assert all(len(top) <= 2 for top in lp["top_logprobs"])
    assert legacy["usage"]["completion_tokens"] == 3
    chat = httpx.post(
        f"{base}/chat/completions",
        json={
            "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 3,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 2,
        },
    ).json()
    content = chat["choices"][0]["logprobs"]["content"]
    assert content[0]["bytes"] == list(content[0]["token"].encode())
    assert len(content[0]["top_logprobs"]) == 2
    assert chat["choices"][0]["message"]["role"] == "assistant"


def test_seeded_sampling_is_reproducible(fleet: RunningFleet) -> None:
    body = {"prompt": "The", "max_tokens": 12, "temperature": 1.0, "top_p": 0.95, "seed": 7}
    url = f"{fleet.pool_url('gpu-fp32')}/completions"
    texts = {httpx.post(url, json=body).json()["choices"][0]["text"] for _ in range(3)}
    assert len(texts) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"max_tokens": 3},
        {"prompt": "x", "stream": True},
        {"prompt": "x", "temperature": 9},
        {"prompt": "x", "bogus": 1},
        {"prompt": "x", "max_tokens": 100000},
    ],
)
def test_bad_requests_get_openai_errors(fleet: RunningFleet, body: dict[str, object]) -> None:
    response = httpx.post(f"{fleet.base_url}/v1/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_model_and_pool_are_404(fleet: RunningFleet) -> None:
    body = {"prompt": "x", "model": "gpt-9"}
    assert httpx.post(f"{fleet.base_url}/v1/completions", json=body).status_code == 404
    assert (
        httpx.post(f"{fleet.pool_url('nope')}/completions", json={"prompt": "x"}).status_code == 404
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"corrupt_logits": {"p": 2}}, "corrupt_logits: p"),
        ({"approx_topk": {"bucket_size": 1}}, "approx_topk: bucket_size"),
        ({"corrupt_logits": {"targets": "klingon"}}, "targets"),
        ({"rope_scaling": {"factor": 2}}, "rope_scaling: factor"),
        ({"precision": "fp8"}, "precision"),
        ({"turbo": True}, "turbo: unknown setting"),
        ({}, "non-empty"),
    ],
)
def test_bad_admin_input_is_400_with_a_clear_message(
    fleet: RunningFleet, body: dict[str, object], needle: str
) -> None:
    response = httpx.put(f"{fleet.base_url}/admin/pools/lab/faults", json=body)
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]


def test_bad_router_input_is_400(fleet: RunningFleet) -> None:
    for body in ({"misroute_share": 1.5}, {"misroute_share": "lots"}, {"sticky": False}):
        assert httpx.put(f"{fleet.base_url}/admin/router", json=body).status_code == 400
    assert httpx.put(f"{fleet.base_url}/admin/router", content=b"{").status_code == 400


def test_cli_state_and_fault(fleet: RunningFleet) -> None:
    runner = CliRunner()
    shown = runner.invoke(sim_app, ["state", "--url", fleet.base_url])
    assert shown.exit_code == 0, shown.output
    assert "gpu-fp32" in shown.output
    flipped = runner.invoke(
        sim_app, ["fault", "lab", "--set", "approx_topk.bucket_size=100", "--url", fleet.base_url]
    )
    assert flipped.exit_code == 0, flipped.output
    state = httpx.get(f"{fleet.base_url}/admin/state").json()["pools"]["lab"]
    assert state["faults"]["approx_topk"]["bucket_size"] == 100
    off = runner.invoke(sim_app, ["fault", "lab", "--off", "approx_topk", "--url", fleet.base_url])
    assert off.exit_code == 0, off.output
    assert (
        httpx.get(f"{fleet.base_url}/admin/state").json()["pools"]["lab"]["faults"]["approx_topk"]
        is None
    )


def test_shipped_fleet_file_is_valid_and_all_faults_off() -> None:
    fleet = load_sim_fleet("config/sim-fleet.yaml")
    assert {p.name for p in fleet.pools} >= {"gpu-fp32", "tpu-bf16", "long-ctx"}
    assert all(
        p.faults.corrupt_logits is None and p.faults.approx_topk is None for p in fleet.pools
    )
    assert fleet.pool("long-ctx").rope_scaling is not None
    assert not fleet.served_by_header


def test_bad_fleet_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("pools:\n  - name: a\n    rope_scaling: {factor: 2}\n")
    with pytest.raises(ConfigError, match=r"fleet.yaml: pool 'a': pools.0.rope_scaling.factor"):
        load_sim_fleet(path)
