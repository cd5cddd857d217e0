"""Daemon-state rows written straight to the store, as the alert engine would leave them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from canary.store import Store
from canary.store.alert_values import alert_fingerprint
from canary.store.models import AlertRow, DeliveryRow, MonitorRow, NotificationRow

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def add_monitor(store: Store, labels: dict[str, str], metric: str, **state: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(MonitorRow).values(
                fingerprint=alert_fingerprint(labels, metric),
                labels=labels,
                metric=metric,
                status="ok",
                state=state,
            )
        )


def add_alert(store: Store, labels: dict[str, str], metric: str, status: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(AlertRow).values(
                fingerprint=alert_fingerprint(labels, metric),
                labels=labels,
                metric=metric,
                status=status,
                pending_at=T0,
                baseline_rate=0.001,
                margin=0.002,
            )
        )


def add_delivery(store: Store, sink: str, status: str) -> None:
    with store.engine.begin() as conn:
        notification = conn.execute(
            insert(NotificationRow)
            .values(group_key="alert:x", status="firing", payload={})
            .returning(NotificationRow.id)
        ).scalar_one()
        conn.execute(
            insert(DeliveryRow).values(notification_id=notification, sink=sink, status=status)
        )
