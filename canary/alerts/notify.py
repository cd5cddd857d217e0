"""Alert transitions → one notification per alert group, written to the outbox.

A group is every cohort one change degraded (``change:ID``), or a single unattributed alert.
A group notifies when it opens or gains a cohort (firing, listing every firing member) and when
its last firing member resolves (resolved, listing the members that resolved). Sinks therefore
get one page per incident, not one per cohort.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from canary.alerts.evidence import SAMPLES, evidence_samples
from canary.alerts.lifecycle import Transition
from canary.store.alert_values import Alert

if TYPE_CHECKING:
    from canary.store.alerts import AlertTransaction

PAYLOAD_VERSION = 1


def notify_groups(
    tx: AlertTransaction,
    transitions: Sequence[Transition],
    sink_names: Sequence[str],
    now: datetime,
) -> list[int]:
    """Enqueue the notifications these transitions call for, in the transaction that made
    them; returns their ids."""
    if not sink_names:
        return []
    groups: dict[str, dict[str, list[int]]] = {}
    for t in transitions:
        key = f"change:{t.change_id}" if t.change_id else f"alert:{t.fingerprint}"
        groups.setdefault(key, {"firing": [], "resolved": []})
        if t.after in ("firing", "resolved"):
            groups[key][t.after].append(t.alert_id)
    ids: list[int] = []
    for key, moved in sorted(groups.items()):
        members = tx.group_alerts(key)
        firing = [a for a in members if a.status == "firing"]
        if moved["firing"]:
            status, listed = "firing", firing
        elif moved["resolved"] and not firing:
            status, listed = "resolved", [a for a in members if a.id in moved["resolved"]]
        else:
            continue
        payload = build_payload(tx, key, status, listed, now)
        # Stamped with the wall clock, not `now`: deliveries fall due in real time.
        ids.append(tx.enqueue_notification(payload, list(sink_names)))
    return ids


def build_payload(
    tx: AlertTransaction, group_key: str, status: str, alerts: Sequence[Alert], now: datetime
) -> dict[str, Any]:
    """The sink-independent notification: the group, its change, its alerts with samples."""
    change = None
    if group_key.startswith("change:"):
        found = tx.find_change(group_key.removeprefix("change:"))
        change = found.to_dict() if found is not None else None
    items = []
    for alert in alerts:
        item = alert.to_dict()
        outputs = tx.flagged_outputs(alert.evidence_ids[:SAMPLES], alert.metric)
        item["samples"] = evidence_samples(outputs)
        items.append(item)
    return {
        "version": PAYLOAD_VERSION,
        "notification_id": None,
        "group_key": group_key,
        "status": status,
        "created_at": now.isoformat(),
        "change": change,
        "summary": summary_line(status, alerts, change),
        "alerts": items,
    }


def summary_line(status: str, alerts: Sequence[Alert], change: dict[str, Any] | None) -> str:
    """``FIRING: unexpected_script 4.1% (baseline 0.3%) on endpoint=tpu-bf16 after deploy d-7``."""
    if not alerts:
        return status.upper()
    first = alerts[0]
    more = f" and {len(alerts) - 1} more cohort(s)" if len(alerts) > 1 else ""
    cause = f" after {change['kind']} {change['id']}" if change else ""
    if status == "resolved":
        return f"RESOLVED: {first.metric} on {first.cohort}{more}{cause}"
    return (
        f"FIRING: {first.metric} {first.rate:.2%} (baseline ≤ {first.baseline_rate:.2%}) "
        f"on {first.cohort}{more}{cause}"
    )
