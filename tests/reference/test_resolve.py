"""Which reference judges a fleet: --reference > $CANARY_REFERENCE_MODEL > daemon > fleet > none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from canary.config.fleet import EndpointConfig, FleetConfig
from canary.config.judged import with_resolved_reference
from canary.config.reference import (
    REFERENCE_ENV,
    SHIPPED_MODEL,
    ReferenceConfig,
    describe_reference,
    resolve_reference,
)
from canary.errors import ConfigError
from canary.sim import model_dir


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A second model directory (the shipped one's config only: resolution reads no weights)."""
    where = tmp_path / "my-model"
    where.mkdir()
    shutil.copy(model_dir() / "config.json", where / "config.json")
    return where


def test_precedence_cli_env_daemon_fleet(model_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(model_copy, other)
    fleet = ReferenceConfig(model=SHIPPED_MODEL, chat_template="chatml", dtype="bfloat16")
    daemon = ReferenceConfig(model=str(other))
    env = {REFERENCE_ENV: str(model_copy)}

    assert resolve_reference(fleet=fleet, environ={}) == fleet
    from_daemon = resolve_reference(daemon=daemon, fleet=fleet, environ={})
    assert from_daemon is not None and from_daemon.model == str(other.resolve())
    from_env = resolve_reference(daemon=daemon, fleet=fleet, environ=env)
    assert from_env is not None and from_env.model == str(model_copy.resolve())
    from_cli = resolve_reference(str(other), daemon=None, fleet=fleet, environ=env)
    assert from_cli is not None and from_cli.model == str(other.resolve())
    # A directory from the command line replaces the model, not how the endpoints render chat.
    assert (from_cli.chat_template, from_cli.dtype) == ("chatml", "bfloat16")
    assert resolve_reference(environ={}) is None


def test_relative_paths_are_relative_to_the_file_naming_them(model_copy: Path) -> None:
    fleet = ReferenceConfig(model=model_copy.name)
    resolved = resolve_reference(fleet=fleet, fleet_dir=model_copy.parent, environ={})
    assert resolved is not None and resolved.model == str(model_copy.resolve())


def test_endpoint_reference_passes_through_and_must_exist() -> None:
    fleet = FleetConfig(
        endpoints=[EndpointConfig(name="a", base_url="http://a.test/v1", model="m")],
    )
    daemon = ReferenceConfig(endpoint="a")
    judged = with_resolved_reference(fleet, daemon=daemon, environ={})
    assert judged.reference == daemon
    assert describe_reference(judged.reference) == "endpoint a"
    with pytest.raises(ConfigError, match="'b' is not an endpoint of the fleet"):
        with_resolved_reference(fleet, daemon=ReferenceConfig(endpoint="b"), environ={})


@pytest.mark.parametrize("where", ["--reference", "env"])
def test_a_path_without_a_model_is_one_line_with_the_fix(tmp_path: Path, where: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError) as info:
        if where == "env":
            resolve_reference(environ={REFERENCE_ENV: str(empty)})
        else:
            resolve_reference(str(tmp_path / "missing"), environ={})
    message = str(info.value)
    assert "\n" not in message
    assert "has no config.json" in message or "is not a directory" in message
    assert "canary:tiny" in message


def test_embedded_sim_fleet_keeps_the_shipped_reference() -> None:
    from canary.sim.embedded import default_sim_fleet_path, fleet_config_for
    from canary.sim.fleetconfig import load_sim_fleet

    fleet = fleet_config_for(load_sim_fleet(default_sim_fleet_path()), "http://127.0.0.1:1")
    assert fleet.reference == ReferenceConfig(model=SHIPPED_MODEL)
    assert with_resolved_reference(fleet, environ={}).reference == fleet.reference


def test_daemon_config_reference_overrides_the_fleets(model_copy: Path, tmp_path: Path) -> None:
    import yaml

    from canary.daemon.launch import open_daemon

    suite = tmp_path / "tiny.jsonl"
    suite.write_text('{"id": "hello", "prompt": "Say hello"}\n')
    fleet = tmp_path / "fleet.yaml"
    endpoint = {"name": "a", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    fleet.write_text(yaml.safe_dump({"endpoints": [endpoint], "reference": {"endpoint": "a"}}))
    config = tmp_path / "daemon.yaml"
    daemon = {
        "fleet": "fleet.yaml",
        "reference": {"model": model_copy.name, "dtype": "bfloat16"},
        "schedules": [{"name": "s", "suite": str(suite), "every": "5m"}],
    }
    config.write_text(yaml.safe_dump(daemon))
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with open_daemon(config, db=url) as d:
        assert d.fleet.reference == ReferenceConfig(
            model=str(model_copy.resolve()), dtype="bfloat16"
        )
    with open_daemon(config, db=url, reference=SHIPPED_MODEL) as d:
        assert d.fleet.reference == ReferenceConfig(model=SHIPPED_MODEL, dtype="bfloat16")
