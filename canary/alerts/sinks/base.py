"""What a sink is: a pure `render` of a notification payload, and a `send` that delivers it.

Rendering is separate from sending so every wire format is tested without a network, and so
the outbox can retry a `send` as often as it likes: a sink keeps no state between sends.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from canary.alerts.sinks.config import RetryPolicy, SinkConfigBase

C = TypeVar("C", bound=SinkConfigBase)

#: A notification payload as the alert engine builds it (see `canary.alerts.outbox`).
Payload = Mapping[str, Any]


class DeliveryError(Exception):
    """A send failed. The message is one line without secrets: it is stored and logged."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        """The receiver refused the request itself (a 4xx); retries help once config is fixed."""


class Sink(ABC, Generic[C]):
    """One configured destination for notifications.

    Subclasses set `type` and `config_model`, and implement `render` and `send`; register them
    with `canary.alerts.sinks.register_sink`.
    """

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[SinkConfigBase]]

    def __init__(self, config: C) -> None:
        if not isinstance(config, self.config_model):
            needed = self.config_model.__name__
            raise TypeError(f"{builtins.type(self).__name__} needs a {needed}")
        self.config = config

    def __repr__(self) -> str:
        return f"{builtins.type(self).__name__}(name={self.name!r})"

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def retry(self) -> RetryPolicy:
        return self.config.retry

    @property
    def lease_s(self) -> float:
        """How long one `send` may take at most: the outbox holds a delivery that long."""
        return 60.0

    def check(self) -> None:
        """Raise `ConfigError` if something `send` needs (an environment variable) is missing."""

    @abstractmethod
    def render(self, payload: Payload) -> list[tuple[str, Any]]:
        """What `send` would deliver, without side effects: (target, body) pairs.

        HTTP sinks return (path relative to the configured URL, JSON body) so that a URL held
        in an environment variable never shows up here; `stdout` returns (level, line).
        """

    @abstractmethod
    def send(self, payload: Payload) -> None:
        """Deliver `payload`, or raise `DeliveryError` (or `ConfigError` for missing secrets)."""
