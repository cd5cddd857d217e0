"""Endpoint checks against the real simulated fleet over loopback, and against a closed port."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from canary.config.fleet import FleetConfig
from canary.doctor import exit_code, run_checks
from canary.errors import ExitCode
from canary.sim.embedded import embedded_fleet
from tests.doctor.helpers import app, by_name

runner = CliRunner()


@pytest.fixture(scope="module")
def sim_fleet() -> Iterator[FleetConfig]:
    with embedded_fleet() as fleet:
        yield fleet


def write_fleet(path: Path, endpoints: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"endpoints": endpoints}))
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_sim_endpoint_answers_one_token(
    sim_fleet: FleetConfig, tmp_path: Path, sqlite_url: str
) -> None:
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(sim_fleet.model_dump(mode="json")))

    checks = run_checks(fleet=fleet_file, db=sqlite_url)

    endpoints = [c for c in checks if c.name.startswith("endpoint ")]
    assert [c.name for c in endpoints] == [f"endpoint {e.name}" for e in sim_fleet.endpoints]
    for check in endpoints:
        assert check.status == "ok", check
        assert "HTTP 200 in" in check.detail and check.fix == ""
    assert by_name(checks)["fleet config"].detail.endswith(
        f"{len(sim_fleet.endpoints)} endpoint(s)"
    )


def test_api_key_is_sent_but_never_shown(
    sim_fleet: FleetConfig, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    door = sim_fleet.endpoint("front-door")
    monkeypatch.setenv("DOCTOR_TEST_KEY", "sk-very-secret-value")
    fleet_file = write_fleet(
        tmp_path / "fleet.yaml",
        [
            {
                "name": "keyed",
                "base_url": door.base_url,
                "flavour": door.flavour,
                "model": door.model,
                "api_key_env": "DOCTOR_TEST_KEY",
            }
        ],
    )

    result = runner.invoke(app, ["doctor", "--fleet", str(fleet_file), "--db", sqlite_url])

    assert "sk-very-secret-value" not in result.output
    assert "✓ endpoint keyed" in result.output


def test_missing_api_key_variable_is_named_and_nothing_is_sent(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCTOR_MISSING_KEY", raising=False)
    fleet_file = write_fleet(
        tmp_path / "fleet.yaml",
        [
            {
                "name": "needs-key",
                "base_url": f"http://127.0.0.1:{closed_port()}/v1",
                "model": "m",
                "api_key_env": "DOCTOR_MISSING_KEY",
            }
        ],
    )

    checks = run_checks(fleet=fleet_file, db=sqlite_url)

    check = by_name(checks)["endpoint needs-key"]
    assert (check.status, check.area) == ("fail", "config")
    assert "DOCTOR_MISSING_KEY" in check.detail and "not set" in check.detail
    assert check.fix.startswith("export DOCTOR_MISSING_KEY")
    assert exit_code(checks) == ExitCode.USAGE


def test_closed_port_fails_with_exit_code_5(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canary.store import open_store

    open_store(sqlite_url).close()
    monkeypatch.chdir(tmp_path)
    port = closed_port()
    fleet_file = write_fleet(
        tmp_path / "fleet.yaml",
        [{"name": "gone", "base_url": f"http://127.0.0.1:{port}/v1", "model": "m"}],
    )

    result = runner.invoke(
        app, ["doctor", "--fleet", str(fleet_file), "--db", sqlite_url, "--json", "--timeout", "2"]
    )

    assert result.exit_code == ExitCode.ENDPOINT, result.output
    report = json.loads(result.stdout)
    assert report["exit_code"] == 5
    gone = next(c for c in report["checks"] if c["name"] == "endpoint gone")
    assert gone["status"] == "fail" and gone["area"] == "endpoint"
    assert f"127.0.0.1:{port}" in gone["detail"] and "(connect," in gone["detail"]
    assert gone["fix"] == "is the server up and base_url right? (host, port, scheme)"
    others = [c for c in report["checks"] if c["name"] not in ("endpoint gone", "reference")]
    assert all(c["status"] == "ok" for c in others), others
    # The fleet names no reference: said (a warning), and nothing compared with the dead port.
    assert next(c for c in report["checks"] if c["name"] == "reference")["status"] == "warn"
    assert not any(c["name"].startswith("tokens ") for c in report["checks"])
