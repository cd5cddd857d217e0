"""The `alertmanager` sink: alerts as Prometheus Alertmanager v2 ``postableAlerts``.

Alertmanager identifies an alert by its label set, so the labels are only what stays fixed
over an alert's life (cohort, metric, change, fingerprint); numbers go in annotations. A
firing alert ends ``firing_ttl_s`` after the notification (Alertmanager would otherwise resolve it
itself after its ``resolve_timeout``); a resolved one ends at its ``resolved_at``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from canary.alerts.sinks.base import Payload
from canary.alerts.sinks.config import AlertmanagerSinkConfig
from canary.alerts.sinks.http import HttpSink
from canary.alerts.sinks.registry import register_sink
from canary.alerts.sinks.text import (
    alert_status,
    alert_title,
    evidence_commands,
    impact_text,
    rate_text,
)

#: ``alertname`` of every alert canary sends.
ALERT_NAME = "CanaryRegression"
#: Labels canary sets itself; a cohort label of the same name becomes ``cohort_<name>``.
_OWN_LABELS = frozenset({"alertname", "metric", "severity", "change_id", "canary_fingerprint"})
_INVALID_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_]")


@register_sink
class AlertmanagerSink(HttpSink[AlertmanagerSinkConfig]):
    """POSTs every alert of a notification in one request to ``/api/v2/alerts``."""

    type = "alertmanager"
    config_model = AlertmanagerSinkConfig

    def render(self, payload: Payload) -> list[tuple[str, Any]]:
        alerts = [self._postable(payload, alert) for alert in payload.get("alerts") or []]
        return [("/api/v2/alerts", alerts)] if alerts else []

    def _postable(self, payload: Payload, alert: Mapping[str, Any]) -> dict[str, Any]:
        labels = {_label_name(k): str(v) for k, v in (alert.get("labels") or {}).items()}
        labels = {(f"cohort_{k}" if k in _OWN_LABELS else k): v for k, v in labels.items()}
        labels.update(
            alertname=ALERT_NAME,
            metric=str(alert.get("metric", "")),
            severity=self.config.severity,
            canary_fingerprint=str(alert.get("fingerprint", "")),
        )
        if alert.get("change_id"):
            labels["change_id"] = str(alert["change_id"])
        annotations = {
            "summary": f"{alert_title(alert)} regressed: {rate_text(alert)}",
            "description": _description(payload, alert),
        }
        evidence = evidence_commands(alert)
        if evidence:
            annotations["evidence"] = "; ".join(evidence)
        postable: dict[str, Any] = {
            "labels": labels,
            "annotations": annotations,
            "startsAt": alert.get("fired_at") or alert.get("pending_at"),
        }
        if alert_status(payload, alert) == "resolved":
            postable["endsAt"] = alert.get("resolved_at") or payload.get("created_at")
        else:
            postable["endsAt"] = _after(payload.get("created_at"), self.config.firing_ttl_s)
        if self.config.generator_url:
            postable["generatorURL"] = self.config.generator_url.replace(
                "{alert_id}", str(alert.get("id", ""))
            ).replace("{fingerprint}", str(alert.get("fingerprint", "")))
        return {k: v for k, v in postable.items() if v is not None}


def _label_name(key: str) -> str:
    """A valid Prometheus label name (``[A-Za-z_][A-Za-z0-9_]*``) for a cohort label key."""
    name = _INVALID_LABEL_CHARS.sub("_", str(key))
    return name if name and not name[0].isdigit() else f"_{name}"


def _description(payload: Payload, alert: Mapping[str, Any]) -> str:
    since = f" since {alert['onset_at']}" if alert.get("onset_at") else ""
    sentences = [f"Flagged rate {rate_text(alert)}{since}."]
    impact = impact_text(alert)
    if impact:
        sentences.append(f"Session impact: {impact}.")
    change = payload.get("change")
    if alert.get("change_id") and isinstance(change, Mapping):
        note = f": {change['note']}" if change.get("note") else ""
        sentences.append(
            f"Attributed to {change.get('kind', 'change')} {alert['change_id']} "
            f"at {change.get('at', '?')}{note}."
        )
    elif alert.get("change_id"):
        sentences.append(f"Attributed to change {alert['change_id']}.")
    return " ".join(sentences)


def _after(iso: str | None, seconds: float) -> str:
    from datetime import UTC, datetime, timedelta

    start = datetime.fromisoformat(iso) if iso else datetime.now(UTC)
    return (start + timedelta(seconds=seconds)).isoformat()
