"""Config, suite, baseline and sink checks: failures name the file or variable, never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.compare.baselines import import_baseline
from canary.doctor import Check, exit_code, run_checks
from canary.errors import ConfigError, ExitCode
from canary.store import Store
from tests.doctor.conftest import DaemonFile
from tests.doctor.helpers import app, by_name

runner = CliRunner()
SHIPPED_BASELINE = Path(__file__).resolve().parents[2] / "baselines" / "sim-healthy.json"


def test_valid_daemon_config_with_sim_fleet(daemon_file: DaemonFile, store: Store) -> None:
    checks = by_name(run_checks(config=daemon_file(), db=store.url))

    assert checks["daemon config"].status == "ok"
    assert "1 schedule(s), 0 sink(s), no alerts" in checks["daemon config"].detail
    assert checks["fleet config"].detail.startswith("sim: true")
    schedule = checks["schedule tiny"]
    assert schedule.status == "ok"
    assert "suite tiny v" in schedule.detail and "(1 probes)" in schedule.detail
    assert "every 5m" in schedule.detail
    assert not [c for c in checks if c.startswith("endpoint ")]


def test_invalid_daemon_config_names_the_key(daemon_file: DaemonFile, store: Store) -> None:
    checks = run_checks(config=daemon_file(retention_evry="1h"), db=store.url)

    found = by_name(checks)["daemon config"]
    assert found.status == "fail"
    assert "retention_evry: unknown key" in found.detail
    assert found.fix == "remove it or check its spelling"
    assert exit_code(checks) == ExitCode.USAGE


def test_missing_config_file(tmp_path: Path, store: Store) -> None:
    found = by_name(run_checks(fleet=tmp_path / "nope.yaml", db=store.url))["fleet config"]
    assert found.status == "fail" and "nope.yaml: file not found" in found.detail


def test_missing_suite_fails_its_schedule(
    daemon_file: DaemonFile, store: Store, tmp_path: Path
) -> None:
    path = daemon_file(
        schedules=[{"name": "ghost", "suite": str(tmp_path / "ghost.jsonl"), "every": "5m"}]
    )

    found = by_name(run_checks(config=path, db=store.url))["schedule ghost"]

    assert found.status == "fail" and "not found" in found.detail


def test_baseline_missing_then_present(daemon_file: DaemonFile, store: Store) -> None:
    path = daemon_file(alerts={"baseline": "healthy"})

    missing = run_checks(config=path, db=store.url)
    check = by_name(missing)["baseline healthy"]
    assert check.status == "fail" and "no baseline named 'healthy'" in check.detail
    assert "canary baseline capture" in check.fix
    assert exit_code(missing) == ExitCode.USAGE

    import_baseline(store, SHIPPED_BASELINE, name="healthy")
    assert by_name(run_checks(config=path, db=store.url))["baseline healthy"].status == "ok"


def test_sink_variables_are_named_never_read_out(
    daemon_file: DaemonFile, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_url = "https://hooks.example.test/T000/B000/very-secret-token"
    monkeypatch.setenv("DOCTOR_HOOK_URL", secret_url)
    monkeypatch.delenv("DOCTOR_AM_TOKEN", raising=False)
    path = daemon_file(
        sinks=[
            {"type": "stdout"},
            {"type": "webhook", "url_env": "DOCTOR_HOOK_URL"},
            {
                "type": "alertmanager",
                "url": "http://127.0.0.1:1",
                "headers_env": {"Authorization": "DOCTOR_AM_TOKEN"},
            },
        ]
    )

    checks = by_name(run_checks(config=path, db=store.url))

    assert checks["sink stdout"].status == "ok"
    assert checks["sink webhook"].status == "ok"
    failed = checks["sink alertmanager"]
    assert (failed.status, failed.area) == ("fail", "sink")
    assert "DOCTOR_AM_TOKEN" in failed.detail and "not set" in failed.detail
    result = runner.invoke(app, ["doctor", "--config", str(path), "--db", store.url])
    assert result.exit_code == ExitCode.USAGE
    assert "DOCTOR_AM_TOKEN" in result.output
    assert secret_url not in result.output and "very-secret-token" not in result.output


def test_alerts_without_sinks_warn(daemon_file: DaemonFile, store: Store) -> None:
    import_baseline(store, SHIPPED_BASELINE, name="healthy")
    path = daemon_file(alerts={"baseline": "healthy"})

    assert by_name(run_checks(config=path, db=store.url))["sinks"].status == "warn"


def test_config_and_fleet_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        run_checks(config=tmp_path / "d.yaml", fleet=tmp_path / "f.yaml")


def test_earliest_failing_layer_decides_the_exit_code() -> None:
    endpoint = Check("endpoint a", "fail", "down", "", "endpoint")
    database = Check("database", "fail", "down", "", "database")
    config = Check("sink s", "fail", "unset", "", "sink")
    warning = Check("alerts", "warn", "1 firing", "", "daemon")

    assert exit_code([warning]) == ExitCode.OK
    assert exit_code([warning, endpoint]) == ExitCode.ENDPOINT
    assert exit_code([endpoint, database]) == ExitCode.DATA
    assert exit_code([endpoint, database, config]) == ExitCode.USAGE
