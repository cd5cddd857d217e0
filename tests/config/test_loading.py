"""Config files: encodings, URLs checked the way httpx will read them, secrets registered."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from canary.config import load_fleet
from canary.config.fleet import check_http_url
from canary.config.loading import read_mapping
from canary.errors import ConfigError
from canary.sanitize import scrub_secrets, secret_envs


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "https://llm.internal/v1",
        "http://[::1]:8555/v1",
        "http://[fe80::1%25eth0]:80/v1",
        "https://llm.internal:443",
        "http://gpu-a.pool_3.internal/v1",
    ],
)
def test_good_urls_pass_and_httpx_agrees(url: str) -> None:
    assert check_http_url(url) == url
    assert httpx.URL(url).host


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1:8555/v1", "an IPv6 host goes in brackets"),
        ("http://::1]:8555/v1", "an IPv6 host goes in brackets"),
        ("http://[::1]]:8555/v1", "not a valid URL"),
        ("http://[zz]:80/v1", "not a valid URL"),
        ("http://host:99999/v1", "Port out of range"),
        ("http://host:-1/v1", "not a valid URL"),
        ("http://host:0/v1", "port 0"),
        ("http://:80/v1", "names no host"),
        ("http:///v1", "names no host"),
        ("ftp://host/v1", "must start with http:// or https://"),
        ("http://host /v1", "spaces or control characters"),
        (" http://host/v1", "spaces or control characters"),
        ("http://ho\x1bst/v1", "spaces or control characters"),
        ("http://key:secret@host/v1", "holds credentials"),
        ("http://host/v1?api-version=1", "query or fragment"),
        ("http://host/v1#frag", "query or fragment"),
    ],
)
def test_bad_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_http_url(url)
    assert reason in str(caught.value)


def test_an_endpoint_error_names_the_file_the_endpoint_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "endpoints:\n"
        "  - {name: a, base_url: 'http://127.0.0.1:1/v1', model: m}\n"
        "  - {name: b, base_url: 'http://[::1:8555/v1', model: m}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: endpoint 'b': endpoints.1.base_url: ")
    assert "\n" not in message


def test_utf8_with_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_bytes(b"\xef\xbb\xbfendpoints:\n  - {name: a, base_url: 'http://h/v1', model: m}\n")
    assert load_fleet(path).endpoints[0].name == "a"


@pytest.mark.parametrize("suffix", [".yaml", ".toml", ".json"])
def test_non_utf8_is_one_line_with_byte_and_offset(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"fleet{suffix}"
    path.write_bytes(b"\x00\x00ab\x80")
    with pytest.raises(ConfigError) as caught:
        read_mapping(path, "fleet file")
    assert str(caught.value) == (
        f"fleet file {path} is not UTF-8 text (byte 0x80 at offset 4); save it as UTF-8"
    )


def test_a_directory_or_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory; give the path of a file"):
        read_mapping(tmp_path)
    with pytest.raises(ConfigError, match="file not found"):
        read_mapping(tmp_path / "nope.yaml")


def test_loading_a_fleet_registers_every_api_key_env_as_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "endpoints:\n"
        "  - {name: a, base_url: 'http://h/v1', model: m, api_key_env: CANARY_TEST_KEY_ONE}\n"
        "  - {name: b, base_url: 'http://h/v1', model: m, api_key_env: CANARY_TEST_KEY_TWO}\n"
        "  - {name: c, base_url: 'http://h/v1', model: m}\n"
    )
    monkeypatch.setenv("CANARY_TEST_KEY_TWO", "sk-two-abcdef0123")
    load_fleet(path)
    assert {"CANARY_TEST_KEY_ONE", "CANARY_TEST_KEY_TWO"} <= secret_envs()
    assert scrub_secrets("echo: sk-two-abcdef0123!") == "echo: ***!"
