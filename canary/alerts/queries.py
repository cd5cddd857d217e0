"""Reading alerts back: for `canary alerts`, reports, the metrics endpoint and tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from canary.alerts.model import Alert
from canary.config.selection import labels_match
from canary.errors import NotFoundError
from canary.store import Store
from canary.store.models import AlertRow


def alert_from_row(row: Any) -> Alert:
    return Alert(
        id=row.id,
        fingerprint=row.fingerprint,
        labels=dict(row.labels),
        metric=row.metric,
        status=row.status,
        pending_at=row.pending_at,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        onset_at=row.onset_at,
        change_id=row.change_id,
        baseline_rate=row.baseline_rate,
        margin=row.margin,
        k=row.k,
        n=row.n,
        score=row.score,
        evidence_ids=list(row.evidence_ids or []),
        impact=row.impact,
        detail=dict(row.detail or {}),
    )


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
    query = select(AlertRow).order_by(AlertRow.pending_at.desc(), AlertRow.id.desc())
    if status:
        query = query.where(AlertRow.status.in_(list(status)))
    if since is not None:
        query = query.where((AlertRow.resolved_at.is_(None)) | (AlertRow.resolved_at >= since))
    if change_id is not None:
        query = query.where(AlertRow.change_id == change_id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    alerts = [alert_from_row(r) for r in rows]
    if labels:
        alerts = [a for a in alerts if labels_match(a.labels, labels)]
    if not include_cleared:
        alerts = [a for a in alerts if a.fired_at is not None or a.status == "pending"]
    return alerts[:limit]


def get_alert(store: Store, alert_id: int) -> Alert:
    with store.engine.connect() as conn:
        row = conn.execute(select(AlertRow).where(AlertRow.id == alert_id)).first()
    if row is None:
        raise NotFoundError(f"no alert {alert_id}; list them with `canary alerts --all`")
    return alert_from_row(row)
