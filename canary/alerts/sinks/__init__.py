"""Alert sinks: where notifications go (stdout, a JSON webhook, Alertmanager, Slack).

Each sink renders a notification payload purely (`Sink.render`, tested without a network) and
sends it (`Sink.send`); the outbox (`canary.alerts.outbox`) retries sends until delivered.
Sinks are configured with the `type:`-tagged models of `canary.alerts.sinks.config` (read
through `SinkConfig`) and built with `build_sinks`. A third-party sink subclasses `Sink` (or
`HttpSink`, overriding only `render`), sets ``type`` and ``config_model``, and is exposed
through the ``canary.sinks`` entry-point group. Importing this package registers the built-ins.
"""

from canary.alerts.sinks.alertmanager import AlertmanagerSink
from canary.alerts.sinks.base import DeliveryError, Payload, Sink
from canary.alerts.sinks.config import (
    AlertmanagerSinkConfig,
    HttpSinkConfig,
    RetryPolicy,
    SinkConfigBase,
    SlackSinkConfig,
    StdoutSinkConfig,
    WebhookSinkConfig,
    validate_sink_names,
)
from canary.alerts.sinks.http import HttpSink
from canary.alerts.sinks.registry import SinkConfig, build_sinks, register_sink, sinks
from canary.alerts.sinks.slack import SlackSink
from canary.alerts.sinks.stdout import StdoutSink
from canary.alerts.sinks.webhook import WebhookSink

__all__ = [
    "AlertmanagerSink",
    "AlertmanagerSinkConfig",
    "DeliveryError",
    "HttpSink",
    "HttpSinkConfig",
    "Payload",
    "RetryPolicy",
    "Sink",
    "SinkConfig",
    "SinkConfigBase",
    "SlackSink",
    "SlackSinkConfig",
    "StdoutSink",
    "StdoutSinkConfig",
    "WebhookSink",
    "WebhookSinkConfig",
    "build_sinks",
    "register_sink",
    "sinks",
    "validate_sink_names",
]
