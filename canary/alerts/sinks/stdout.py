"""The `stdout` sink: one readable line per alert, printed and logged (``canary.alerts``).

Useful on its own for a daemon under systemd or Kubernetes, where stdout is the log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from canary.alerts.sinks.base import Payload, Sink
from canary.alerts.sinks.config import StdoutSinkConfig
from canary.alerts.sinks.registry import register_sink
from canary.alerts.sinks.text import alert_line, alert_status

logger = logging.getLogger("canary.alerts")


@register_sink
class StdoutSink(Sink[StdoutSinkConfig]):
    """Prints ``[FIRING] metric on cohort: rate vs baseline; …`` per alert."""

    type = "stdout"
    config_model = StdoutSinkConfig

    def render(self, payload: Payload) -> list[tuple[str, Any]]:
        """(level, line) per alert: ``warning`` for a firing alert, ``info`` for a resolved one."""
        lines: list[tuple[str, Any]] = []
        for alert in payload.get("alerts") or []:
            level = "info" if alert_status(payload, alert) == "resolved" else "warning"
            lines.append((level, alert_line(payload, alert)))
        if not lines:
            lines.append(
                ("info", f"[{str(payload.get('status', '')).upper()}] {payload.get('summary', '')}")
            )
        return lines

    def send(self, payload: Payload) -> None:
        for level, line in self.render(payload):
            print(line, file=sys.stdout, flush=True)
            logger.log(logging.getLevelName(level.upper()), "%s", line)
