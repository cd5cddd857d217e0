"""The sink registry: built-ins register here, third parties through ``canary.sinks``.

An entry point names a `Sink` subclass whose ``type`` equals the entry-point name, e.g.::

    [project.entry-points."canary.sinks"]
    pager = "my_pkg.pager:PagerSink"
"""

from __future__ import annotations

from typing import Any, TypeVar

from canary.alerts.sinks.base import Sink
from canary.registry import Registry

sinks: Registry[type[Sink[Any]]] = Registry("sink", "canary.sinks")

S = TypeVar("S", bound=type[Sink[Any]])


def register_sink(cls: S) -> S:
    """Class decorator: register a `Sink` subclass under its ``type``."""
    sinks.register(cls.type)(cls)
    return cls
