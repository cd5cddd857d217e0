"""Reading alerts back: for `canary alerts`, reports, the metrics endpoint and tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from canary.config.selection import labels_match
from canary.errors import NotFoundError
from canary.store import Store
from canary.store.alert_values import Alert


def list_alerts(
    store: Store,
    *,
    status: Sequence[str] | None = None,
    since: datetime | None = None,
    labels: Mapping[str, str] | None = None,
    change_id: str | None = None,
    include_cleared: bool = False,
    limit: int = 500,
) -> list[Alert]:
    """Alerts, newest first. ``since`` keeps alerts open at or after that time.

    Pending alerts that cleared without firing are left out unless ``include_cleared``.
    """
    from canary.store.alerts import fetch_alerts

    alerts = fetch_alerts(store, statuses=status, since=since, change_id=change_id)
    if labels:
        alerts = [a for a in alerts if labels_match(a.labels, labels)]
    if not include_cleared:
        alerts = [a for a in alerts if a.fired_at is not None or a.status == "pending"]
    return alerts[:limit]


def get_alert(store: Store, alert_id: int) -> Alert:
    """One alert by id; a `NotFoundError` that says how to list them."""
    from canary.store.alerts import fetch_alert

    alert = fetch_alert(store, alert_id)
    if alert is None:
        raise NotFoundError(f"no alert {alert_id}; list them with `canary alerts --all`")
    return alert
