from __future__ import annotations

from pathlib import Path

import pytest

from canary.config import load_fleet
from canary.config.selection import parse_label_filters, select_endpoints
from canary.errors import ConfigError
from canary.resources import resource_dir

GOOD = """
version: 1
defaults: {timeout_s: 10, concurrency: 2}
endpoints:
  - name: gpu-a
    base_url: http://127.0.0.1:9/v1/
    model: m
    labels: {pool: gpu-a, region: eu}
    limits: {concurrency: 16}
  - name: tpu-b
    base_url: https://tpu.internal/v1
    flavour: openai-completions
    model: m
    api_key_env: TPU_KEY
    labels: {pool: tpu-b, region: eu}
"""


def write(tmp_path: Path, text: str, name: str = "fleet.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_fleet_loads_with_defaults_and_overrides(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, GOOD))
    gpu, tpu = fleet.endpoints
    assert gpu.base_url == "http://127.0.0.1:9/v1"
    assert fleet.limits_for(gpu).concurrency == 16
    assert fleet.limits_for(gpu).timeout_s == 10
    assert fleet.limits_for(tpu).concurrency == 2
    assert tpu.cohort_labels() == {
        "pool": "tpu-b",
        "region": "eu",
        "endpoint": "tpu-b",
        "model": "m",
    }


def test_toml_and_json_load_the_same(tmp_path: Path) -> None:
    toml = write(
        tmp_path,
        '[[endpoints]]\nname = "a"\nbase_url = "http://x/v1"\nmodel = "m"\n',
        "fleet.toml",
    )
    json_file = write(
        tmp_path,
        '{"endpoints": [{"name": "a", "base_url": "http://x/v1", "model": "m"}]}',
        "f.json",
    )
    assert load_fleet(toml) == load_fleet(json_file)


ONE = "endpoints:\n  - {name: a, base_url: http://x, model: m%s}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("endpoints: []", "endpoints: 'endpoints' is empty"),
        (ONE % ", colour: red", "endpoints.0.colour: unknown key"),
        (ONE.replace("http://x", "ftp://x") % "", "must start with http"),
        (ONE.replace("name: a", "name: A B") % "", "endpoints.0.name: use lowercase"),
        (ONE % ", api_key_env: sk-abc123", "NAME of an environment variable"),
        (ONE % ", headers: {Authorization: x}", "use api_key_env"),
        (ONE % "" + "\n  - {name: a, base_url: http://y, model: m}", "appears twice"),
        (ONE.replace(", model: m", "") % "", "endpoints.0.model: required key is missing"),
        (ONE % ", limits: {concurrency: 0}", "endpoints.0.limits.concurrency"),
        ("version: 2\n" + ONE % "", "only version 1"),
        ("- just\n- a list", "top level must be a mapping"),
        ("endpoints: [\n", "not valid yaml"),
    ],
)
def test_bad_fleet_gives_one_line_error_naming_file_and_path(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_fleet(path)
    error = str(info.value)
    assert "\n" not in error
    assert error.startswith(str(path))
    assert message in error


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_fleet(tmp_path / "nope.yaml")


def test_shipped_example_fleet_is_valid() -> None:
    fleet = load_fleet(resource_dir("config") / "fleet.example.yaml")
    assert {e.name for e in fleet.endpoints} >= {"front-door", "gpu-fp32"}


def test_selection_by_name_and_labels(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, GOOD))
    assert [e.name for e in select_endpoints(fleet, selectors=["pool=tpu-b"])] == ["tpu-b"]
    assert [e.name for e in select_endpoints(fleet, ["gpu-a"], ["region=eu"])] == ["gpu-a"]
    assert len(select_endpoints(fleet, selectors=["model=m"])) == 2
    with pytest.raises(ConfigError, match="no endpoint matches pool=nope"):
        select_endpoints(fleet, selectors=["pool=nope"])
    with pytest.raises(ConfigError, match="no endpoint named 'zzz'"):
        select_endpoints(fleet, ["zzz"])


@pytest.mark.parametrize("selector", ["pool", "=x", "pool="])
def test_bad_selector(selector: str) -> None:
    with pytest.raises(ConfigError, match="write label=value"):
        parse_label_filters([selector])
