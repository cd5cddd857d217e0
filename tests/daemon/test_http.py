"""The control API over real loopback HTTP: changes in, metrics and health out."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from canary.daemon.http import ControlServer, build_control_app
from canary.daemon.metrics import DaemonMetrics
from canary.errors import ConfigError
from canary.store import Store, open_store
from canary.store.changes import list_changes
from tests.daemon.rows import add_alert, add_monitor

DEPLOY = {"id": "deploy-9", "kind": "deploy", "select": "pool=tpu", "at": "2026-11-24T08:00:00Z"}
TOKEN = "s3cret-token-value"


@pytest.fixture
def metrics() -> DaemonMetrics:
    return DaemonMetrics()


@pytest.fixture
def client(store: Store, metrics: DaemonMetrics) -> Iterator[httpx.Client]:
    with (
        ControlServer(build_control_app(store, metrics)) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        yield http


def test_a_posted_change_is_stored_and_listed(
    client: httpx.Client, store: Store, metrics: DaemonMetrics
) -> None:
    response = client.post("/changes", json=DEPLOY | {"note": "new sampler"})
    assert response.status_code == 201
    assert response.json() == {
        "id": "deploy-9",
        "kind": "deploy",
        "labels": {"pool": "tpu"},
        "at": "2026-11-24T08:00:00+00:00",
        "note": "new sampler",
    }
    (stored,) = list_changes(store)
    assert stored.change_id == "deploy-9" and stored.labels == {"pool": "tpu"}
    listed = client.get("/changes", params={"since": "2026-11-24T00:00:00Z"}).json()
    assert [c["id"] for c in listed] == ["deploy-9"]
    assert client.get("/changes", params={"until": "2026-11-24T08:00:00Z"}).json() == []
    assert client.get("/changes", params={"since": "soon"}).status_code == 400
    changes = metrics.registry.get_sample_value
    assert changes("canary_changes_recorded_total", {"source": "http"}) == 1


def test_a_list_is_stored_whole_or_not_at_all(client: httpx.Client, store: Store) -> None:
    both = [DEPLOY, {"id": "lb-1", "kind": "lb", "select": ["pool=gpu"]}]
    response = client.post("/changes", json=both)
    assert response.status_code == 201
    assert [c["id"] for c in response.json()] == ["deploy-9", "lb-1"]
    bad = client.post("/changes", json=[{"id": "c-1", "kind": "config"}, {"id": "c-2"}])
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("POST /changes[1]: ")
    assert [c.change_id for c in list_changes(store)] == ["deploy-9", "lb-1"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (DEPLOY | {"kind": "rollout"}, "change kind 'rollout' is unknown; use one of deploy"),
        (DEPLOY | {"select": "pool"}, "\"select\" 'pool' is not distinct label=value pairs"),
        (DEPLOY | {"extra": 1}, "unknown key 'extra'"),
        ("not json", "the body is not JSON"),
    ],
)
def test_bad_input_is_400_with_one_line(client: httpx.Client, body: object, expected: str) -> None:
    if isinstance(body, str):
        response = client.post("/changes", content=body)
    else:
        response = client.post("/changes", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert expected in error and "\n" not in error


def test_duplicate_ids_identical_is_200_conflicting_is_409(client: httpx.Client) -> None:
    assert client.post("/changes", json=DEPLOY).status_code == 201
    again = client.post("/changes", json=DEPLOY)
    assert again.status_code == 200 and again.json()["id"] == "deploy-9"
    conflict = client.post("/changes", json=DEPLOY | {"kind": "config"})
    assert conflict.status_code == 409
    assert "already recorded with another kind" in conflict.json()["error"]


def test_the_token_is_required_when_set(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CANARY_CHANGE_TOKEN", TOKEN)
    with (
        ControlServer(build_control_app(store, None)) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        missing = http.post("/changes", json=DEPLOY)
        wrong = http.get("/changes", headers={"Authorization": "Bearer nope"})
        good = http.post("/changes", json=DEPLOY, headers={"Authorization": f"Bearer {TOKEN}"})
        health = http.get("/healthz")
    assert (missing.status_code, wrong.status_code, good.status_code) == (401, 401, 201)
    assert "CANARY_CHANGE_TOKEN" in missing.json()["error"]
    assert TOKEN not in missing.text + wrong.text + caplog.text
    assert health.status_code == 200


def test_an_empty_token_variable_is_a_config_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", " ")
    with pytest.raises(ConfigError, match=r"\$MY_TOKEN is set but empty"):
        build_control_app(store, None, token_env="MY_TOKEN")


def test_metrics_expose_counters_and_gauges_from_the_store(
    client: httpx.Client, store: Store, metrics: DaemonMetrics
) -> None:
    labels = {"endpoint": "tpu-1", "pool": "tpu", "load": "probe", "region": "eu"}
    add_monitor(store, labels, "unexpected_token", score=4.25, last_k=3, last_n=60)
    add_alert(store, labels, "unexpected_token", "firing")
    metrics.round_finished("every-5m", "probe", "completed", {"tpu-1": (60, 1)})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    cohort = 'endpoint="tpu-1",load="probe",metric="unexpected_token",pool="tpu"'
    assert f"canary_monitor_score{{{cohort}}} 4.25" in text
    assert f"canary_monitor_rate{{{cohort}}} 0.05" in text
    assert f'canary_alerts{{{cohort},status="firing"}} 1.0' in text
    assert 'canary_probes_total{endpoint="tpu-1",load="probe",outcome="error"} 1.0' in text
    assert "canary_rounds_total{" in text and "canary_outbox_pending 0.0" in text
    assert "region" not in text


def test_metrics_are_404_when_off(store: Store) -> None:
    with ControlServer(build_control_app(store, None)) as server:
        assert httpx.get(f"{server.url}/metrics").status_code == 404


def test_healthz_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    store = open_store(f"sqlite:///{folder / 'canary.db'}")
    with ControlServer(build_control_app(store, None)) as server:
        assert httpx.get(f"{server.url}/healthz").json() == {"ok": True}
        store.close()
        shutil.rmtree(folder)
        gone = httpx.get(f"{server.url}/healthz")
    assert gone.status_code == 503 and gone.json()["ok"] is False


def test_the_server_binds_a_free_port_and_stops(store: Store) -> None:
    server = ControlServer(build_control_app(store, None)).start()
    url = server.url
    assert server.port > 0
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


def test_a_port_in_use_is_a_config_error(store: Store) -> None:
    with ControlServer(build_control_app(store, None)) as first:
        second = ControlServer(build_control_app(store, None), port=first.port)
        with pytest.raises(ConfigError, match="cannot listen"):
            second.start()
