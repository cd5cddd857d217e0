"""Sink config is strict, defaults the name to the type, and keeps secrets out of files."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from canary.alerts.sinks import (
    AlertmanagerSink,
    Sink,
    SinkConfig,
    SlackSink,
    StdoutSink,
    WebhookSink,
    build_sinks,
    register_sink,
    sinks,
    validate_sink_names,
)
from canary.alerts.sinks.base import Payload
from canary.alerts.sinks.config import SinkConfigBase
from canary.daemon.config import DaemonConfig
from canary.errors import ConfigError

ADAPTER: TypeAdapter[Any] = TypeAdapter(list[SinkConfig])


def parse(*items: dict[str, Any]) -> list[Any]:
    return ADAPTER.validate_python(list(items))


def test_the_type_picks_the_model_and_the_name_defaults_to_it() -> None:
    configs = parse(
        {"type": "stdout"},
        {"type": "webhook", "url": "http://hooks.internal/canary/"},
        {"type": "alertmanager", "name": "am-prod", "url": "http://am:9093"},
        {"type": "slack", "url_env": "SLACK_WEBHOOK_URL"},
    )
    assert [c.name for c in configs] == ["stdout", "webhook", "am-prod", "slack"]
    assert configs[1].url == "http://hooks.internal/canary"
    retry = configs[0].retry
    assert (retry.initial_backoff_s, retry.max_backoff_s, retry.give_up_after_s) == (
        1.0,
        600.0,
        86400.0,
    )
    built = build_sinks(configs)
    assert [type(s) for s in built.values()] == [
        StdoutSink,
        WebhookSink,
        AlertmanagerSink,
        SlackSink,
    ]
    assert set(sinks.names()) >= {"stdout", "webhook", "alertmanager", "slack"}


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"type": "pager"}, "unknown sink 'pager'"),
        ({"name": "pager"}, "a sink needs a 'type'"),
        ({"type": "stdout", "colour": True}, "Extra inputs are not permitted"),
        ({"type": "webhook"}, "exactly one of 'url' and 'url_env'"),
        ({"type": "webhook", "url": "http://a", "url_env": "A"}, "exactly one"),
        ({"type": "webhook", "url": "ftp://a"}, "http:// or https://"),
        ({"type": "webhook", "url": "https://u:pw@hooks.internal"}, "url_env"),
        ({"type": "webhook", "url_env": "https://hooks.internal/x"}, "NAME of an environment"),
        (
            {"type": "webhook", "url": "http://a", "headers_env": {"Authorization": "Bearer x"}},
            "NAME of an environment",
        ),
        ({"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}, "is a secret"),
        ({"type": "stdout", "name": "Ops Channel"}, "lowercase"),
        ({"type": "stdout", "retry": {"initial_backoff_s": 10, "max_backoff_s": 5}}, "at least"),
    ],
)
def test_bad_config_is_refused_with_a_reason(item: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        parse(item)


DAEMON = {"sim": True, "schedules": [{"name": "smoke", "suite": "smoke", "every": "5m"}]}


class PagerConfig(SinkConfigBase):
    type: str = "test-pager"
    rotation: str


class PagerSink(Sink[PagerConfig]):
    """A third-party sink, as an entry point in ``canary.sinks`` would provide it."""

    type = "test-pager"
    config_model = PagerConfig

    def render(self, payload: Payload) -> list[tuple[str, Any]]:
        return [(self.config.rotation, payload.get("summary"))]

    def send(self, payload: Payload) -> None:
        raise NotImplementedError


def test_a_plugin_sink_is_configured_like_a_built_in_one() -> None:
    register_sink(PagerSink)
    try:
        config = DaemonConfig.model_validate(
            {**DAEMON, "sinks": [{"type": "test-pager", "rotation": "llm-serving"}]}
        )
        (sink_config,) = config.sinks
        assert isinstance(sink_config, PagerConfig) and sink_config.name == "test-pager"
        assert config.model_dump()["sinks"][0]["rotation"] == "llm-serving"
        (sink,) = build_sinks(config.sinks).values()
        assert sink.render({"summary": "tpu-bf16 regressed"}) == [
            ("llm-serving", "tpu-bf16 regressed")
        ]
        with pytest.raises(ValidationError, match="rotation"):
            DaemonConfig.model_validate({**DAEMON, "sinks": [{"type": "test-pager"}]})
    finally:
        sinks.unregister("test-pager")
    with pytest.raises(ValidationError, match="unknown sink 'test-pager'"):
        parse({"type": "test-pager", "rotation": "x"})


def test_sink_names_are_unique() -> None:
    configs = parse({"type": "webhook", "url": "http://a"}, {"type": "webhook", "url": "http://b"})
    with pytest.raises(ValueError, match="'webhook' appears twice"):
        validate_sink_names(configs)
    with pytest.raises(ConfigError, match="appears twice"):
        build_sinks(configs)
    renamed = parse(
        {"type": "webhook", "url": "http://a"}, {"type": "webhook", "name": "b", "url": "http://b"}
    )
    assert list(build_sinks(renamed)) == ["webhook", "b"]


def test_a_missing_secret_is_a_one_line_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CANARY_TEST_SLACK_URL", raising=False)
    (sink,) = build_sinks(parse({"type": "slack", "url_env": "CANARY_TEST_SLACK_URL"})).values()
    with pytest.raises(ConfigError) as caught:
        sink.check()
    message = str(caught.value)
    assert "CANARY_TEST_SLACK_URL" in message and "\n" not in message
    monkeypatch.setenv("CANARY_TEST_SLACK_URL", "https://hooks.slack.com/services/T/B/X")
    sink.check()
