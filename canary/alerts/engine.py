"""After each round: one CUSUM per cohort × metric against the baseline, and the alert lifecycle.

Lifecycle, per monitor (hysteresis on both edges, so an alert does not flap):

- ok → pending: the evidence reached half the firing threshold (shown, never paged).
- pending → ok: the evidence fell back below a quarter of it (the pending alert is closed).
- ok/pending → firing: the evidence reached the threshold. The alert records its onset (where
  the evidence began), the change it is attributed to, evidence result ids and session impact,
  and a notification for its group goes to the outbox in the same transaction.
- firing → resolved: a separate recovery statistic, the CUSUM of "rate is back at baseline"
  against "rate is half what was seen from the onset to the alarm" (at least baseline +
  margin), reached ``resolve_nats`` (default half the firing threshold) after at least
  ``resolve_min_rounds`` rounds. Clean rounds are needed, not merely the absence of an alarm.

A run is evaluated once: its ``evaluated_at`` is set in the transaction that updates the
monitors, so two daemons, or a crash and a retry, never count a round twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, distinct, func, insert, select, update

from canary.alerts.attribution import attribute_change
from canary.alerts.evidence import collect_evidence
from canary.alerts.model import alert_fingerprint
from canary.alerts.notify import notify_groups
from canary.alerts.settings import AlertSettings
from canary.compare.aggregate import ERROR_RATE
from canary.stats.cusum import CusumRateDetector, CusumState, recovery_log_lr
from canary.store import Store
from canary.store.models import (
    AlertRow,
    CohortRow,
    MonitorRow,
    ResultRow,
    RunRow,
    ScoreRow,
    utcnow,
)
from canary.store.repository import _upsert


@dataclass(frozen=True)
class Transition:
    """An alert changed state in this evaluation."""

    alert_id: int
    fingerprint: str
    labels: dict[str, str]
    metric: str
    before: str
    after: str
    change_id: str | None = None


@dataclass
class EvaluationReport:
    run_id: int
    evaluated: bool
    """False when the run was already evaluated or is not complete."""
    monitors: int = 0
    transitions: list[Transition] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "evaluated": self.evaluated,
            "monitors": self.monitors,
            "transitions": [t.__dict__ for t in self.transitions],
            "notifications": self.notifications,
        }


def evaluate_run(
    store: Store, run_id: int, settings: AlertSettings, *, now: datetime | None = None
) -> EvaluationReport:
    """Feed one completed, scored run to every monitor it touches; fire or resolve alerts."""
    now = now or utcnow()
    report = EvaluationReport(run_id, evaluated=False)
    with store.write_transaction() as conn:
        claimed = conn.execute(
            update(RunRow)
            .where(
                RunRow.id == run_id,
                RunRow.evaluated_at.is_(None),
                RunRow.status == "completed",
            )
            .values(evaluated_at=now)
        ).rowcount
        if not claimed:
            return report
        report.evaluated = True
        at = conn.execute(select(RunRow.started_at).where(RunRow.id == run_id)).scalar_one()
        counts = round_counts(conn, run_id, list(settings.policies))
        labels_of = dict(
            conn.execute(
                select(CohortRow.id, CohortRow.labels).where(
                    CohortRow.id.in_({c for c, _ in counts})
                )
            ).all()
        )
        for (cohort_id, metric), (k, n) in sorted(counts.items()):
            step = _MonitorStep(conn, store, settings, cohort_id, labels_of[cohort_id], metric)
            transition = step.run(k, n, at, run_id, now)
            report.monitors += step.active
            if transition is not None:
                report.transitions.append(transition)
        if report.transitions:
            report.notifications = notify_groups(conn, report.transitions, settings.sink_names, now)
    return report


def round_counts(
    conn: Connection, run_id: int, metrics: list[str]
) -> dict[tuple[int, str], tuple[int, int]]:
    """(cohort id, metric) → (flagged, scored) sessions of one run.

    The session is the monitors' unit: a front door routes a whole session to one pool (sticky),
    so its requests' flags are not independent, and the CUSUM's false-alarm bound needs
    independent observations. A probe outside a multi-turn session is a session of its own.
    """
    flagged = case((ScoreRow.flagged.is_(True), ResultRow.session_id))
    out: dict[tuple[int, str], tuple[int, int]] = {}
    score_metrics = [m for m in metrics if m != ERROR_RATE]
    for cohort_id, metric, n, k in conn.execute(
        select(
            ResultRow.cohort_id,
            ScoreRow.metric,
            func.count(distinct(ResultRow.session_id)),
            func.count(distinct(flagged)),
        )
        .join(ScoreRow, ScoreRow.result_id == ResultRow.id)
        .where(ResultRow.run_id == run_id, ScoreRow.metric.in_(score_metrics))
        .group_by(ResultRow.cohort_id, ScoreRow.metric)
    ):
        out[(cohort_id, metric)] = (int(k or 0), int(n))
    if ERROR_RATE in metrics:
        errored = case((ResultRow.error_kind.is_not(None), ResultRow.session_id))
        for cohort_id, n, k in conn.execute(
            select(
                ResultRow.cohort_id,
                func.count(distinct(ResultRow.session_id)),
                func.count(distinct(errored)),
            )
            .where(ResultRow.run_id == run_id)
            .group_by(ResultRow.cohort_id)
        ):
            out[(cohort_id, ERROR_RATE)] = (int(k or 0), int(n))
    return out


class _MonitorStep:
    """One monitor's update inside the evaluation transaction."""

    def __init__(
        self,
        conn: Connection,
        store: Store,
        settings: AlertSettings,
        cohort_id: int,
        labels: Mapping[str, str],
        metric: str,
    ) -> None:
        self.conn = conn
        self.store = store
        self.settings = settings
        self.cohort_id = cohort_id
        self.labels = dict(labels)
        self.metric = metric
        self.fingerprint = alert_fingerprint(labels, metric)
        self.active = 0
        # What the monitor row becomes; the state handlers set them.
        self._status = "ok"
        self._alert_id: int | None = None

    def run(self, k: int, n: int, at: datetime, run_id: int, now: datetime) -> Transition | None:
        monitor = self._lock_monitor(now)
        state = dict(monitor.state or {})
        if "detector" in state:
            detector = CusumRateDetector.from_dict(state["detector"])
        else:
            fresh = self.settings.detector_for(self.labels, self.metric)
            if fresh is None:
                return None  # the baseline has no data on this metric: nothing to test against
            detector = fresh
        self.active = 1
        transition: Transition | None = None
        status = monitor.status
        if status == "firing":
            transition = self._while_firing(monitor, state, detector, k, n, run_id, now)
        else:
            result = detector.update(k, n, at)
            transition = self._while_watching(monitor, state, detector, result, now)
            state["score"] = result.score
        state.update(
            detector=detector.to_dict(),
            threshold=detector.threshold,
            p0=detector.p0,
            last_k=k,
            last_n=n,
        )
        state.setdefault("score", 0.0)
        self.conn.execute(
            update(MonitorRow)
            .where(MonitorRow.id == monitor.id)
            .values(state=state, updated_at=now, status=self._status, alert_id=self._alert_id)
        )
        return transition

    # --- states ---------------------------------------------------------------------------

    def _while_watching(
        self,
        monitor: Any,
        state: dict[str, Any],
        detector: CusumRateDetector,
        result: CusumState,
        now: datetime,
    ) -> Transition | None:
        self._status, self._alert_id = monitor.status, monitor.alert_id
        if result.alarm:
            alert_id = monitor.alert_id or self._open_alert(detector, result, now)
            change_id = self._fire(alert_id, detector, result, now)
            state["recovery"] = {"nats": 0.0, "rounds": 0}
            self._status, self._alert_id = "firing", alert_id
            return Transition(
                alert_id,
                self.fingerprint,
                self.labels,
                self.metric,
                monitor.status,
                "firing",
                change_id,
            )
        if result.pending:
            alert_id = monitor.alert_id or self._open_alert(detector, result, now)
            self._update_counts(alert_id, result.k_seg, result.n_seg, result.score, now)
            self._status, self._alert_id = "pending", alert_id
            return None
        if monitor.status == "pending" and result.score < detector.threshold / 4:
            self._close(monitor.alert_id, now, fired=False)
            self._status, self._alert_id = "ok", None
        return None

    def _while_firing(
        self,
        monitor: Any,
        state: dict[str, Any],
        detector: CusumRateDetector,
        k: int,
        n: int,
        run_id: int,
        now: datetime,
    ) -> Transition | None:
        self._status, self._alert_id = "firing", monitor.alert_id
        alert = self.conn.execute(
            select(AlertRow.k, AlertRow.n, AlertRow.evidence_ids).where(
                AlertRow.id == monitor.alert_id
            )
        ).one()
        recovery = dict(state.get("recovery") or {})
        # Fixed at the first round after the alarm: the rate that fired it. Re-estimating it
        # from clean rounds would weaken each clean round's evidence the longer recovery runs.
        p_bad = float(recovery.get("p_bad") or _still_bad_rate(detector, alert.k, alert.n))
        llr = recovery_log_lr(k, n, detector.p0, p_bad)
        recovery.update(
            nats=max(0.0, float(recovery.get("nats", 0.0)) + llr),
            rounds=int(recovery.get("rounds", 0)) + 1,
            p_bad=p_bad,
        )
        state["recovery"] = recovery
        evidence = list(alert.evidence_ids)
        if k and len(evidence) < self.settings.evidence_limit:
            evidence += collect_evidence(
                self.conn,
                self.cohort_id,
                self.metric,
                run_id=run_id,
                limit=self.settings.evidence_limit - len(evidence),
            )
        self.conn.execute(
            update(AlertRow)
            .where(AlertRow.id == monitor.alert_id)
            .values(k=alert.k + k, n=alert.n + n, evidence_ids=evidence, last_evaluated_at=now)
        )
        if (
            recovery["nats"] >= (self.settings.resolve_nats or detector.threshold / 2)
            and recovery["rounds"] >= self.settings.resolve_min_rounds
        ):
            self._close(monitor.alert_id, now, fired=True, recovery=recovery)
            detector.reset()
            state.pop("recovery", None)
            state["score"] = 0.0
            self._status, self._alert_id = "ok", None
            change_id = self.conn.execute(
                select(AlertRow.change_id).where(AlertRow.id == monitor.alert_id)
            ).scalar_one()
            return Transition(
                monitor.alert_id,
                self.fingerprint,
                self.labels,
                self.metric,
                "firing",
                "resolved",
                change_id,
            )
        return None

    # --- rows -----------------------------------------------------------------------------

    def _lock_monitor(self, now: datetime) -> Any:
        self.conn.execute(
            _upsert(self.conn, MonitorRow).on_conflict_do_nothing(index_elements=["fingerprint"]),
            {
                "fingerprint": self.fingerprint,
                "labels": self.labels,
                "metric": self.metric,
                "status": "ok",
                "state": {},
                "updated_at": now,
            },
        )
        query = select(
            MonitorRow.id, MonitorRow.status, MonitorRow.state, MonitorRow.alert_id
        ).where(MonitorRow.fingerprint == self.fingerprint)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return self.conn.execute(query).one()

    def _open_alert(self, detector: CusumRateDetector, result: CusumState, now: datetime) -> int:
        row = self.conn.execute(
            insert(AlertRow)
            .values(
                fingerprint=self.fingerprint,
                labels=self.labels,
                metric=self.metric,
                status="pending",
                pending_at=now,
                onset_at=result.onset,
                baseline_rate=detector.p0,
                margin=self.settings.policies[self.metric].margin,
                k=result.k_seg,
                n=result.n_seg,
                score=result.score,
                evidence_ids=[],
                detail={},
                last_evaluated_at=now,
            )
            .returning(AlertRow.id)
        )
        return int(row.scalar_one())

    def _update_counts(self, alert_id: int, k: int, n: int, score: float, now: datetime) -> None:
        self.conn.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id)
            .values(k=k, n=n, score=score, last_evaluated_at=now)
        )

    def _fire(
        self, alert_id: int, detector: CusumRateDetector, result: CusumState, now: datetime
    ) -> str | None:
        onset = result.onset or now
        attributed = attribute_change(
            self.conn,
            cohort_id=self.cohort_id,
            labels=self.labels,
            metric=self.metric,
            p0=detector.p0,
            onset=onset,
            fired_at=now,
            window=self.settings.attribution_window,
        )
        change_id, since = None, onset
        if attributed is not None:
            change_id, change_at = attributed
            since = min(onset, change_at)
        evidence = collect_evidence(
            self.conn,
            self.cohort_id,
            self.metric,
            since=since,
            limit=self.settings.evidence_limit,
        )
        impact = _impact(self.store, self.labels, self.metric, since)
        self.conn.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id)
            .values(
                status="firing",
                fired_at=now,
                onset_at=onset,
                change_id=change_id,
                baseline_rate=detector.p0,
                margin=detector.margin,
                k=result.k_seg,
                n=result.n_seg,
                score=result.score,
                evidence_ids=evidence,
                impact=impact,
                detail={
                    "baseline": self.settings.baseline_name,
                    "threshold_nats": detector.threshold,
                    "alternative_rate": result.alternative,
                    "arl_rounds": self.settings.arl_rounds,
                    "rounds": result.rounds,
                },
                last_evaluated_at=now,
            )
        )
        return change_id

    def _close(
        self,
        alert_id: int | None,
        now: datetime,
        *,
        fired: bool,
        recovery: Mapping[str, Any] | None = None,
    ) -> None:
        if alert_id is None:
            return
        detail = self.conn.execute(
            select(AlertRow.detail).where(AlertRow.id == alert_id)
        ).scalar_one()
        detail = dict(detail or {})
        if recovery is not None:
            detail["recovery_nats"] = recovery["nats"]
            detail["recovery_rounds"] = recovery["rounds"]
        if not fired:
            detail["cleared_without_firing"] = True
        self.conn.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id)
            .values(status="resolved", resolved_at=now, detail=detail, last_evaluated_at=now)
        )


def _still_bad_rate(detector: CusumRateDetector, k: int, n: int) -> float:
    """The rate the recovery test weighs against the baseline: half the rate seen from the
    onset to the alarm (the estimate is biased high, having been selected for crossing the
    threshold; the half absorbs that), never below baseline + margin. Resolving needs
    evidence that the rate is nearer the baseline than that: a fault still running at its
    rate cannot resolve, so the alert does not flap."""
    floor = detector.p0 + detector.margin
    if n == 0:
        return floor
    return min(max(floor, k / n / 2), 0.999)


def _impact(
    store: Store, labels: Mapping[str, str], metric: str, since: datetime
) -> dict[str, Any] | None:
    """Request- and session-level impact of this cohort × metric since the onset."""
    from canary.stats.impact import session_impact

    impacts = session_impact(
        store, since=since, labels=labels, metrics=[metric], group_by=("endpoint",)
    )
    if not impacts:
        return None
    return {k: v for k, v in impacts[0].to_dict().items() if k != "labels"}
