"""Alerts and monitors: reading alerts back, and the one write transaction of an evaluation.

`alert_transaction` is how the alert engine touches the database: it claims a run, locks each
monitor, reads what attribution, evidence and impact need and writes what the lifecycle decided,
all on one connection inside one write transaction, so monitor state, alerts and the outbox
commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from canary.records import ResultFilter
from canary.store.alert_evidence import FlaggedOutput, flagged_outputs, flagged_result_ids
from canary.store.alert_values import Alert
from canary.store.attribution import CandidateChange, changes_between, counts_since
from canary.store.attribution import flagged_sessions as _flagged_sessions
from canary.store.changes import Change, find_change
from canary.store.impact import CohortImpact, impact_on
from canary.store.models import AlertRow, CohortRow, MonitorRow, RunRow
from canary.store.outbox import enqueue_notification
from canary.store.repository import _upsert

if TYPE_CHECKING:
    from canary.store.repository import Store


@dataclass(frozen=True)
class AlertTally:
    """What the open alert of a monitor has counted since its onset."""

    k: int
    n: int
    evidence_ids: tuple[int, ...] = ()
    change_id: str | None = None
    """The change the alert is attributed to."""


@dataclass(frozen=True)
class MonitorRecord:
    """A monitor row, locked for this transaction, with its firing alert's tally."""

    id: int
    status: str
    state: dict[str, Any]
    alert_id: int | None
    alert: AlertTally | None = None


@dataclass(frozen=True)
class NewAlert:
    """A pending alert to open: the evidence reached half the firing threshold."""

    fingerprint: str
    labels: dict[str, str]
    metric: str
    onset_at: datetime | None
    baseline_rate: float
    margin: float
    k: int
    n: int
    score: float


@dataclass(frozen=True)
class FiredAlert:
    """What an alert records when it fires."""

    onset_at: datetime
    change_id: str | None
    baseline_rate: float
    margin: float
    k: int
    n: int
    score: float
    evidence_ids: list[int]
    impact: dict[str, Any] | None
    detail: dict[str, Any] = field(default_factory=dict)


def alert_from_row(row: Any) -> Alert:
    """An `alerts` row as the `Alert` value."""
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


def fetch_alerts(
    store: Store,
    *,
    statuses: Sequence[str] | None = None,
    since: datetime | None = None,
    change_id: str | None = None,
) -> list[Alert]:
    """Alerts newest first: of ``statuses``, open at or after ``since``, of one change."""
    query = select(AlertRow).order_by(AlertRow.pending_at.desc(), AlertRow.id.desc())
    if statuses:
        query = query.where(AlertRow.status.in_(list(statuses)))
    if since is not None:
        query = query.where((AlertRow.resolved_at.is_(None)) | (AlertRow.resolved_at >= since))
    if change_id is not None:
        query = query.where(AlertRow.change_id == change_id)
    with store.engine.connect() as conn:
        return [alert_from_row(r) for r in conn.execute(query).all()]


def fetch_alert(store: Store, alert_id: int) -> Alert | None:
    """One alert by id, or None."""
    with store.engine.connect() as conn:
        row = conn.execute(select(AlertRow).where(AlertRow.id == alert_id)).first()
    return alert_from_row(row) if row is not None else None


def open_monitor_labels(store: Store) -> list[dict[str, str]]:
    """The labels of every pending or firing monitor, with its ``status`` (what adaptive
    probing allocates by)."""
    query = select(MonitorRow.labels, MonitorRow.status).where(
        MonitorRow.status.in_(["pending", "firing"])
    )
    with store.engine.connect() as conn:
        return [{**dict(labels), "status": status} for labels, status in conn.execute(query)]


@contextmanager
def alert_transaction(store: Store) -> Iterator[AlertTransaction]:
    """One write transaction of the alert engine; commits on leaving, rolls back on error."""
    with store.write_transaction() as conn:
        yield AlertTransaction(conn)


class AlertTransaction:
    """The reads and writes of one evaluation, all on the transaction's one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # --- the run ---------------------------------------------------------------------------

    def claim_run(self, run_id: int, now: datetime) -> datetime | None:
        """Mark a completed run evaluated (exactly once); its start time, or None when it was
        already evaluated or is not complete."""
        claimed = self._conn.execute(
            update(RunRow)
            .where(
                RunRow.id == run_id,
                RunRow.evaluated_at.is_(None),
                RunRow.status == "completed",
            )
            .values(evaluated_at=now)
        ).rowcount
        if not claimed:
            return None
        at: datetime = self._conn.execute(
            select(RunRow.started_at).where(RunRow.id == run_id)
        ).scalar_one()
        return at

    def round_counts(
        self, run_id: int, metrics: Sequence[str]
    ) -> dict[tuple[int, str], tuple[int, int]]:
        """(cohort id, metric) → (flagged, scored) sessions of one run."""
        return _flagged_sessions(self._conn, metrics, run_id=run_id)

    def cohort_labels(self, cohort_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        rows = self._conn.execute(
            select(CohortRow.id, CohortRow.labels).where(CohortRow.id.in_(set(cohort_ids)))
        )
        return {int(i): dict(labels) for i, labels in rows}

    # --- monitors --------------------------------------------------------------------------

    def lock_monitor(
        self, fingerprint: str, labels: Mapping[str, str], metric: str, now: datetime
    ) -> MonitorRecord:
        """The monitor of a cohort × metric (created ok and empty if new), locked on
        PostgreSQL until the transaction ends; SQLite serialises writers anyway."""
        self._conn.execute(
            _upsert(self._conn, MonitorRow).on_conflict_do_nothing(index_elements=["fingerprint"]),
            {
                "fingerprint": fingerprint,
                "labels": dict(labels),
                "metric": metric,
                "status": "ok",
                "state": {},
                "updated_at": now,
            },
        )
        query = select(
            MonitorRow.id, MonitorRow.status, MonitorRow.state, MonitorRow.alert_id
        ).where(MonitorRow.fingerprint == fingerprint)
        if self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._conn.execute(query).one()
        tally = None
        if row.status == "firing":
            alert = self._conn.execute(
                select(AlertRow.k, AlertRow.n, AlertRow.evidence_ids, AlertRow.change_id).where(
                    AlertRow.id == row.alert_id
                )
            ).one()
            tally = AlertTally(alert.k, alert.n, tuple(alert.evidence_ids or ()), alert.change_id)
        return MonitorRecord(row.id, row.status, dict(row.state or {}), row.alert_id, tally)

    def save_monitor(
        self,
        monitor_id: int,
        *,
        status: str,
        state: Mapping[str, Any],
        alert_id: int | None,
        now: datetime,
    ) -> None:
        self._conn.execute(
            update(MonitorRow)
            .where(MonitorRow.id == monitor_id)
            .values(state=dict(state), updated_at=now, status=status, alert_id=alert_id)
        )

    # --- alerts ----------------------------------------------------------------------------

    def open_alert(self, alert: NewAlert, now: datetime) -> int:
        """Insert a pending alert; its id."""
        row = self._conn.execute(
            insert(AlertRow)
            .values(
                fingerprint=alert.fingerprint,
                labels=alert.labels,
                metric=alert.metric,
                status="pending",
                pending_at=now,
                onset_at=alert.onset_at,
                baseline_rate=alert.baseline_rate,
                margin=alert.margin,
                k=alert.k,
                n=alert.n,
                score=alert.score,
                evidence_ids=[],
                detail={},
                last_evaluated_at=now,
            )
            .returning(AlertRow.id)
        )
        return int(row.scalar_one())

    def update_pending(self, alert_id: int, k: int, n: int, score: float, now: datetime) -> None:
        self._set(alert_id, k=k, n=n, score=score, last_evaluated_at=now)

    def fire_alert(self, alert_id: int, fired: FiredAlert, now: datetime) -> None:
        self._set(
            alert_id,
            status="firing",
            fired_at=now,
            onset_at=fired.onset_at,
            change_id=fired.change_id,
            baseline_rate=fired.baseline_rate,
            margin=fired.margin,
            k=fired.k,
            n=fired.n,
            score=fired.score,
            evidence_ids=list(fired.evidence_ids),
            impact=fired.impact,
            detail=dict(fired.detail),
            last_evaluated_at=now,
        )

    def tally_alert(self, alert_id: int, tally: AlertTally, now: datetime) -> None:
        """Set a firing alert's counts and evidence since the onset."""
        self._set(
            alert_id,
            k=tally.k,
            n=tally.n,
            evidence_ids=list(tally.evidence_ids),
            last_evaluated_at=now,
        )

    def count_alert(self, alert_id: int, k: int, n: int, now: datetime) -> None:
        """Set an escalation's counts since it opened (its evidence stays as collected)."""
        self._set(alert_id, k=k, n=n, last_evaluated_at=now)

    def close_alert(self, alert_id: int, detail: Mapping[str, Any], now: datetime) -> str | None:
        """Resolve an alert, adding ``detail`` to its detail; the change it is attributed to."""
        row = self._conn.execute(
            select(AlertRow.detail, AlertRow.change_id).where(AlertRow.id == alert_id)
        ).one()
        merged = {**dict(row.detail or {}), **detail}
        self._set(
            alert_id, status="resolved", resolved_at=now, detail=merged, last_evaluated_at=now
        )
        return row.change_id

    def group_alerts(self, group_key: str) -> list[Alert]:
        """The latest firing or resolved alert per cohort of a notification group."""
        query = select(AlertRow).where(AlertRow.status.in_(["firing", "resolved"]))
        if group_key.startswith("change:"):
            query = query.where(AlertRow.change_id == group_key.removeprefix("change:"))
        else:
            query = query.where(
                AlertRow.fingerprint == group_key.removeprefix("alert:"),
                AlertRow.change_id.is_(None),
            )
        # A fingerprint's earlier episodes are history; the group is its latest alert per cohort.
        latest: dict[str, Alert] = {}
        for row in self._conn.execute(query.order_by(AlertRow.id)).all():
            alert = alert_from_row(row)
            latest[alert.fingerprint] = alert
        return list(latest.values())

    def _set(self, alert_id: int, **values: Any) -> None:
        self._conn.execute(update(AlertRow).where(AlertRow.id == alert_id).values(**values))

    # --- what attribution, evidence, impact and notifications read -------------------------

    def counts_since(
        self, cohort_id: int, metric: str, since: datetime, until: datetime
    ) -> tuple[int, int]:
        return counts_since(self._conn, cohort_id, metric, since, until)

    def changes_between(self, since: datetime, until: datetime) -> list[CandidateChange]:
        return changes_between(self._conn, since, until)

    def flagged_result_ids(
        self,
        cohort_id: int,
        metric: str,
        *,
        since: datetime | None = None,
        run_id: int | None = None,
        limit: int = 20,
    ) -> list[int]:
        return flagged_result_ids(
            self._conn, cohort_id, metric, since=since, run_id=run_id, limit=limit
        )

    def impact(
        self, where: ResultFilter, metrics: Sequence[str], group_by: Sequence[str]
    ) -> list[CohortImpact]:
        return impact_on(self._conn, where, metrics=metrics, group_by=group_by)

    def find_change(self, change_id: str) -> Change | None:
        return find_change(self._conn, change_id)

    def flagged_outputs(self, result_ids: Sequence[int], metric: str) -> list[FlaggedOutput]:
        return flagged_outputs(self._conn, result_ids, metric)

    def enqueue_notification(
        self, payload: Mapping[str, Any], sink_names: Sequence[str], now: datetime | None = None
    ) -> int:
        """A notification and its deliveries, committed with this transaction's alert changes."""
        return enqueue_notification(self._conn, payload, sink_names, now=now)
