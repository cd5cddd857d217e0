"""Request shaping and serving metadata in the fleet file: strict, one line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.config import load_fleet
from canary.config.shaping import CANARY_FIELDS, DROPPABLE_PARAMS
from canary.errors import ConfigError

ONE = "endpoints:\n  - {name: a, base_url: 'http://x/v1', model: m%s}"


def load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "fleet.yaml"
    path.write_text(ONE % extra, encoding="utf-8")
    return load_fleet(path)


def error_of(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    error = str(info.value)
    assert "\n" not in error and "Traceback" not in error
    return error


def test_shaping_fields_load(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "endpoints:\n"
        "  - name: a\n"
        "    base_url: http://x/v1\n"
        "    model: m\n"
        "    auth: x-api-key\n"
        "    api_key_env: A_KEY\n"
        "    extra_body: {repetition_penalty: 1.0, min_p: 0.0, generation_config: {a: [1, null]}}\n"
        "    drop_params: [top_k, seed]\n"
        "    headers: {X-Tenant: canary}\n"
        "    record_headers: [X-Served-By, x-build]\n"
        "    labels: {pool: a}\n",
        encoding="utf-8",
    )
    (endpoint,) = load_fleet(path).endpoints
    assert endpoint.auth == "x-api-key"
    assert endpoint.extra_body == {
        "repetition_penalty": 1.0,
        "min_p": 0.0,
        "generation_config": {"a": [1, None]},
    }
    assert endpoint.drop_params == ["top_k", "seed"]
    assert endpoint.record_headers == ["x-served-by", "x-build"]


def test_auth_defaults_to_the_flavour_style(tmp_path: Path) -> None:
    (endpoint,) = load(tmp_path, "").endpoints  # type: ignore[attr-defined]
    assert endpoint.auth is None


@pytest.mark.parametrize("key", sorted(CANARY_FIELDS))
def test_extra_body_may_not_set_what_canary_sets(tmp_path: Path, key: str) -> None:
    error = error_of(tmp_path, f", extra_body: {{{key}: 1}}")
    assert f"extra_body key {key!r}" in error
    assert CANARY_FIELDS[key] in error


def test_probe_params_in_extra_body_point_at_drop_params(tmp_path: Path) -> None:
    assert "use drop_params" in error_of(tmp_path, ", extra_body: {temperature: 0.5}")
    assert "supports_logprobs" in error_of(tmp_path, ", extra_body: {logprobs: true}")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-01-01", "date value"),
        (".nan", "nan is not a finite number"),
        ("{1: x}", "object keys must be strings"),
        ("[" * 20 + "1" + "]" * 20, "nested deeper than 16 levels"),
    ],
)
def test_extra_body_values_are_plain_json(tmp_path: Path, value: str, message: str) -> None:
    error = error_of(tmp_path, f", extra_body: {{x: {value}}}")
    assert "extra_body 'x'" in error and message in error


def test_drop_params_are_checked(tmp_path: Path) -> None:
    error = error_of(tmp_path, ", drop_params: [top_kk]")
    assert "drop_params 'top_kk' is not a field canary sends" in error
    assert ", ".join(DROPPABLE_PARAMS) in error
    assert "set `supports_logprobs: false`" in error_of(tmp_path, ", drop_params: [logprobs]")
    assert "not a field canary sends" in error_of(tmp_path, ", drop_params: [model]")
    assert "twice" in error_of(tmp_path, ", drop_params: [seed, seed]")


def test_auth_styles(tmp_path: Path) -> None:
    assert "auth: none never sends a key" in error_of(tmp_path, ", auth: none, api_key_env: A_KEY")
    assert "auth" in error_of(tmp_path, ", auth: basic")
    (endpoint,) = load(tmp_path, ", auth: none").endpoints  # type: ignore[attr-defined]
    assert endpoint.auth == "none"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (", record_headers: ['x served']", "is not a header name"),
        (", record_headers: [x-served-by, X-Served-By]", "one label"),
        (", record_headers: [endpoint]", "would be label 'endpoint', set by canary"),
        (", record_headers: [System-Fingerprint]", "label 'system_fingerprint', set by canary"),
        (", record_headers: [x-pool], labels: {x_pool: a}", "which `labels` already sets"),
        (", labels: {system_fingerprint: x}", "set by canary from each reply"),
        (", headers: {X-Api-Key: k}", "would hold a secret"),
        (", headers: {'x tenant': a}", "is not a header name"),
        (', headers: {X-Tenant: "a\\nb"}', "control or non-ASCII"),
    ],
)
def test_headers_and_labels_are_checked(tmp_path: Path, extra: str, message: str) -> None:
    assert message in error_of(tmp_path, extra)
