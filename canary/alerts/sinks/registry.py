"""The sink registry: built-ins register here, third parties through ``canary.sinks``; and
what needs it: `SinkConfig`, validated by the model of the sink its ``type`` names, and
`build_sinks`.

An entry point names a `Sink` subclass whose ``type`` equals the entry-point name, e.g.::

    [project.entry-points."canary.sinks"]
    pager = "my_pkg.pager:PagerSink"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, SerializeAsAny

from canary.alerts.sinks.base import Sink
from canary.alerts.sinks.config import SinkConfigBase, validate_sink_names
from canary.errors import ConfigError
from canary.registry import Registry

sinks: Registry[type[Sink[Any]]] = Registry("sink", "canary.sinks")

S = TypeVar("S", bound=type[Sink[Any]])


def register_sink(cls: S) -> S:
    """Class decorator: register a `Sink` subclass under its ``type``."""
    sinks.register(cls.type)(cls)
    return cls


def _by_type(data: Any) -> Any:
    """Validate a sink entry with the config model of the sink its ``type`` names, built-in or
    registered by a plugin."""
    if isinstance(data, SinkConfigBase):
        return data
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise ValueError(f"a sink needs a 'type', one of: {', '.join(sinks.names())}")
    try:
        sink = sinks.get(data["type"])
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return sink.config_model.model_validate(dict(data))


SinkConfig = SerializeAsAny[Annotated[SinkConfigBase, BeforeValidator(_by_type)]]
"""Any sink's config, validated by the model of the sink its ``type`` names."""


def build_sinks(configs: Sequence[SinkConfigBase]) -> dict[str, Sink[Any]]:
    """The sinks of `configs` by name; secrets are not read here but at send time."""
    try:
        validate_sink_names(configs)
    except ValueError as exc:
        raise ConfigError(f"sinks: {exc}") from None
    built: dict[str, Sink[Any]] = {}
    for config in configs:
        built[config.name] = sinks.get(config.type)(config)
    return built
