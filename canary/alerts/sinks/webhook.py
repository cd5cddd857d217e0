"""The `webhook` sink: the notification payload, unchanged, as JSON (schema ``version`` 1).

For receivers you write yourself; the payload carries ``notification_id`` so a receiver can
drop the duplicates that at-least-once delivery may produce.
"""

from __future__ import annotations

from typing import Any

from canary.alerts.sinks.base import Payload
from canary.alerts.sinks.config import WebhookSinkConfig
from canary.alerts.sinks.http import HttpSink
from canary.alerts.sinks.registry import register_sink


@register_sink
class WebhookSink(HttpSink[WebhookSinkConfig]):
    """POSTs the payload to the configured URL."""

    type = "webhook"
    config_model = WebhookSinkConfig

    def render(self, payload: Payload) -> list[tuple[str, Any]]:
        return [("", dict(payload))]
