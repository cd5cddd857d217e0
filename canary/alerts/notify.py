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

from sqlalchemy import Connection, select

from canary.alerts.evidence import evidence_samples
from canary.alerts.model import Alert
from canary.store.changes import find_change
from canary.store.models import AlertRow

if TYPE_CHECKING:
    from canary.alerts.engine import Transition

PAYLOAD_VERSION = 1


def notify_groups(
    conn: Connection, transitions: Sequence[Transition], sink_names: Sequence[str], now: datetime
) -> list[int]:
    """Enqueue the notifications these transitions call for; returns their ids."""
    from canary.alerts.outbox import enqueue_notification

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
        members = _group_alerts(conn, key)
        firing = [a for a in members if a.status == "firing"]
        if moved["firing"]:
            status, listed = "firing", firing
        elif moved["resolved"] and not firing:
            status, listed = "resolved", [a for a in members if a.id in moved["resolved"]]
        else:
            continue
        payload = build_payload(conn, key, status, listed, now)
        ids.append(enqueue_notification(conn, payload, list(sink_names)))
    return ids


def build_payload(
    conn: Connection, group_key: str, status: str, alerts: Sequence[Alert], now: datetime
) -> dict[str, Any]:
    """The sink-independent notification: the group, its change, its alerts with samples."""
    change = None
    if group_key.startswith("change:"):
        found = find_change(conn, group_key.removeprefix("change:"))
        change = found.to_dict() if found is not None else None
    items = []
    for alert in alerts:
        item = alert.to_dict()
        item["samples"] = evidence_samples(conn, alert.evidence_ids, alert.metric)
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


def _group_alerts(conn: Connection, group_key: str) -> list[Alert]:
    from canary.alerts.queries import alert_from_row

    query = select(AlertRow).where(AlertRow.status.in_(["firing", "resolved"]))
    if group_key.startswith("change:"):
        query = query.where(AlertRow.change_id == group_key.removeprefix("change:"))
    else:
        query = query.where(
            AlertRow.fingerprint == group_key.removeprefix("alert:"),
            AlertRow.change_id.is_(None),
        )
    rows = conn.execute(query.order_by(AlertRow.id)).all()
    # A fingerprint's earlier episodes are history; the group is its latest alert per cohort.
    latest: dict[str, Alert] = {}
    for row in rows:
        alert = alert_from_row(row)
        latest[alert.fingerprint] = alert
    return list(latest.values())
