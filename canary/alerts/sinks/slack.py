"""The `slack` sink: a Slack incoming-webhook message (``text`` fallback plus Block Kit blocks).

Model outputs are untrusted text: excerpts go in code blocks, with Slack's control characters
(``&``, ``<``, ``>``) escaped and backticks replaced, so an output can neither break the
formatting nor ping ``<!channel>``. Lengths stay inside Slack's limits (150 characters per
header, 3,000 per section, 50 blocks per message).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from canary.alerts.sinks.base import Payload
from canary.alerts.sinks.config import SlackSinkConfig
from canary.alerts.sinks.http import HttpSink
from canary.alerts.sinks.registry import register_sink
from canary.alerts.sinks.text import alert_status, evidence_commands, impact_text, rate_text

#: Alerts shown as sections; the rest are counted in a last line (Slack allows 50 blocks).
MAX_ALERTS = 20
#: Output excerpts shown per alert.
MAX_SAMPLES = 2
_HEADER_CHARS = 150
_SECTION_CHARS = 3000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@register_sink
class SlackSink(HttpSink[SlackSinkConfig]):
    """POSTs one message per notification to the webhook URL named by `url_env`."""

    type = "slack"
    config_model = SlackSinkConfig

    def render(self, payload: Payload) -> list[tuple[str, Any]]:
        status = str(payload.get("status", "firing"))
        mark = ":white_check_mark:" if status == "resolved" else ":rotating_light:"
        title = f"{status.upper()}: {payload.get('summary', '')}"
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(f"{mark} {title}", _HEADER_CHARS)},
            }
        ]
        change = payload.get("change")
        if isinstance(change, Mapping) and change.get("id"):
            note = f": {escape(str(change['note']))}" if change.get("note") else ""
            text = (
                f"Change {code(str(change['id']))} ({escape(str(change.get('kind', '?')))}) "
                f"at {escape(str(change.get('at', '?')))}{note}"
            )
            blocks.append(_context(_cut(text, _SECTION_CHARS)))
        alerts = list(payload.get("alerts") or [])
        for alert in alerts[:MAX_ALERTS]:
            section = {"type": "mrkdwn", "text": self._alert_text(payload, alert)}
            blocks.append({"type": "section", "text": section})
        if len(alerts) > MAX_ALERTS:
            more = len(alerts) - MAX_ALERTS
            blocks.append(_context(f"…and {more} more alerts in this notification"))
        return [("", {"text": escape(title), "blocks": blocks})]

    def _alert_text(self, payload: Payload, alert: Mapping[str, Any]) -> str:
        status = alert_status(payload, alert)
        head = [
            f"*{status.upper()}* {code(str(alert.get('metric', '?')))} on "
            f"{code(str(alert.get('cohort') or 'whole fleet'))}",
            escape(rate_text(alert)),
        ]
        impact = impact_text(alert)
        if impact:
            head.append(escape(impact))
        evidence = evidence_commands(alert)
        if evidence:
            head.append("Evidence: " + ", ".join(code(c) for c in evidence))
        samples = []
        for sample in (alert.get("samples") or [])[:MAX_SAMPLES]:
            excerpt = _cut(str(sample.get("excerpt", "")), self.config.excerpt_chars)
            samples.append(
                f"{code('canary show ' + str(sample.get('result_id', '?')))}\n"
                f"```{_code_text(excerpt)}```"
            )
        text = "\n".join(head + samples)
        # Cutting inside a code block would unbalance it: drop the excerpts first.
        return text if len(text) <= _SECTION_CHARS else _cut("\n".join(head), _SECTION_CHARS)


def escape(text: str) -> str:
    """Text safe for Slack mrkdwn: ``&``, ``<`` and ``>`` as entities, no control characters."""
    text = _CONTROL.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """An inline code span of `text` on one line."""
    return f"`{_code_text(' '.join(text.split()))}`"


def _code_text(text: str) -> str:
    # A backtick would close the span or block; U+02CB looks the same and cannot.
    return escape(text).replace("`", "\u02cb") or " "


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
