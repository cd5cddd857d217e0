"""After each round: one CUSUM per cohort × metric against the baseline, and the alert lifecycle.

Per monitor, `canary.alerts.lifecycle.step` decides (a pure function of the monitor's state and
the round's counts); this module applies its actions through the store's alert transaction:
a firing alert records its onset (where the evidence began), the change it is attributed to,
evidence result ids and session impact, and a notification for its group goes to the outbox,
all in the one write transaction that updates the monitors.

A recorded change that touches a firing monitor's cohort is handed to `step` with the round
that follows it (changes since the monitor's previous round): the lifecycle may open an
escalation, an alert of its own attributed to that change, so a second fault on a firing
cohort is not masked by the first; a rollback resolves the episode of the change it undoes.

A run is evaluated once: its ``evaluated_at`` is set in that same transaction, so two daemons,
or a crash and a retry, never count a round twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from canary.alerts.attribution import attribute_change, change_touches, rollback_of
from canary.alerts.lifecycle import (
    ChangeEvent,
    Clear,
    Escalate,
    Fire,
    MonitorState,
    OpenAlert,
    Pending,
    Resolve,
    ResolveEpisode,
    TallyEpisode,
    Transition,
    UpdateEvidence,
    step,
)
from canary.alerts.notify import notify_groups
from canary.alerts.settings import AlertSettings
from canary.records import ResultFilter
from canary.store.alert_values import alert_fingerprint

if TYPE_CHECKING:
    from canary.store import Store
    from canary.store.alerts import AlertTally, AlertTransaction

__all__ = ["EvaluationReport", "Transition", "evaluate_run"]


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
    from canary.store.alerts import alert_transaction
    from canary.store.models import utcnow

    now = now or utcnow()
    report = EvaluationReport(run_id, evaluated=False)
    with alert_transaction(store) as tx:
        at = tx.claim_run(run_id, now)
        if at is None:
            return report
        report.evaluated = True
        counts = tx.round_counts(run_id, list(settings.policies))
        labels_of = tx.cohort_labels([c for c, _ in counts])
        for (cohort_id, metric), (k, n) in sorted(counts.items()):
            monitor = _Monitor(tx, settings, cohort_id, labels_of[cohort_id], metric, now)
            report.transitions += monitor.run(k, n, at, run_id)
            report.monitors += monitor.active
        if report.transitions:
            report.notifications = notify_groups(tx, report.transitions, settings.sink_names, now)
    return report


class _Monitor:
    """One monitor's round: load its state, `step` it, apply the actions, save it."""

    def __init__(
        self,
        tx: AlertTransaction,
        settings: AlertSettings,
        cohort_id: int,
        labels: Mapping[str, str],
        metric: str,
        now: datetime,
    ) -> None:
        self.tx = tx
        self.settings = settings
        self.cohort_id = cohort_id
        self.labels = dict(labels)
        self.metric = metric
        self.fingerprint = alert_fingerprint(labels, metric)
        self.now = now
        self.active = 0

    def run(self, k: int, n: int, at: datetime, run_id: int) -> list[Transition]:
        record = self.tx.lock_monitor(self.fingerprint, self.labels, self.metric, self.now)
        tally = record.alert
        stored = "detector" in record.state
        fresh = None if stored else self.settings.detector_for(self.labels, self.metric)
        state = MonitorState.from_stored(
            record.status,
            record.state,
            record.alert_id,
            fresh,
            alert_k=tally.k if tally else 0,
            alert_n=tally.n if tally else 0,
            evidence=len(tally.evidence_ids) if tally else 0,
            alert_change=tally.change_id if tally else None,
        )
        if state is None:
            return []  # the baseline has no data on this metric: nothing to test against
        self.active = 1
        changes = self._changes_since(record.state.get("last_at"), at) if tally else []
        new, actions = step(state, k, n, at, self.settings.rules_for(self.metric), changes)
        alert_id = state.alert_id
        transitions: list[Transition] = []
        for action in actions:
            match action:
                case OpenAlert():
                    alert_id = self._open(action)
                case Pending(k=k_seg, n=n_seg, score=score):
                    assert alert_id is not None
                    self.tx.update_pending(alert_id, k_seg, n_seg, score, self.now)
                case Fire():
                    assert alert_id is not None
                    transitions.append(self._fire(alert_id, action))
                case UpdateEvidence():
                    assert alert_id is not None and tally is not None
                    self._update_evidence(alert_id, tally, action, run_id)
                case Resolve():
                    assert alert_id is not None
                    resolved: dict[str, Any] = {
                        "recovery_nats": action.recovery_nats,
                        "recovery_rounds": action.recovery_rounds,
                    }
                    change_id = self.tx.close_alert(alert_id, resolved, self.now)
                    transitions.append(self._transition(alert_id, "firing", "resolved", change_id))
                case Clear():
                    assert alert_id is not None
                    self.tx.close_alert(alert_id, {"cleared_without_firing": True}, self.now)
                case Escalate():
                    escalation = self._escalate(action)
                    new = replace(
                        new,
                        episodes=tuple(
                            replace(e, alert_id=escalation) if e.alert_id is None else e
                            for e in new.episodes
                        ),
                    )
                    transitions.append(
                        self._transition(escalation, "ok", "firing", action.change_id)
                    )
                case TallyEpisode(alert_id=episode, k=k_ep, n=n_ep):
                    self.tx.count_alert(episode, k_ep, n_ep, self.now)
                case ResolveEpisode():
                    detail: dict[str, Any] = {
                        "recovery_nats": action.recovery_nats,
                        "recovery_rounds": action.recovery_rounds,
                        "resolved_by": action.reason,
                    }
                    change_id = self.tx.close_alert(action.alert_id, detail, self.now)
                    transitions.append(
                        self._transition(action.alert_id, "firing", "resolved", change_id)
                    )
        if new.status != "ok" and new.alert_id is None:
            new = replace(new, alert_id=alert_id)
        # Keys this version does not know stay as they were.
        saved = {**record.state, **new.to_stored(), "last_at": at.isoformat()}
        for key, present in (
            ("recovery", new.recovery),
            ("watch", new.watch),
            ("episodes", new.episodes),
        ):
            if not present:
                saved.pop(key, None)
        self.tx.save_monitor(
            record.id, status=new.status, state=saved, alert_id=new.alert_id, now=self.now
        )
        return transitions

    def _changes_since(self, last_at: str | None, at: datetime) -> list[ChangeEvent]:
        """Recorded changes touching the cohort since the monitor's previous round."""
        if last_at is None:
            return []
        since = datetime.fromisoformat(last_at)
        return [
            ChangeEvent(c.change_id, c.at, rollback_of(c.note))
            for c in self.tx.changes_between(since, at)
            if c.at > since and change_touches(c.labels, self.labels)
        ]

    def _open(self, action: OpenAlert) -> int:
        from canary.store.alerts import NewAlert

        return self.tx.open_alert(
            NewAlert(
                fingerprint=self.fingerprint,
                labels=self.labels,
                metric=self.metric,
                onset_at=action.onset,
                baseline_rate=action.baseline_rate,
                margin=action.margin,
                k=action.k,
                n=action.n,
                score=action.score,
            ),
            self.now,
        )

    def _fire(self, alert_id: int, fire: Fire) -> Transition:
        """Attribute the alert, collect its evidence and impact since the onset (or the change,
        if earlier), and mark it firing."""
        from canary.store.alerts import FiredAlert

        onset = fire.onset or self.now
        attributed = attribute_change(
            self.tx,
            cohort_id=self.cohort_id,
            labels=self.labels,
            metric=self.metric,
            p0=fire.baseline_rate,
            onset=onset,
            fired_at=self.now,
            window=self.settings.attribution_window,
        )
        change_id, since = None, onset
        if attributed is not None:
            change_id, change_at = attributed
            since = min(onset, change_at)
        evidence, impact = self._evidence(since)
        fired = FiredAlert(
            onset_at=onset,
            change_id=change_id,
            baseline_rate=fire.baseline_rate,
            margin=fire.margin,
            k=fire.k,
            n=fire.n,
            score=fire.score,
            evidence_ids=evidence,
            impact=impact,
            detail={
                "baseline": self.settings.baseline_name,
                "threshold_nats": fire.threshold,
                "alternative_rate": fire.alternative,
                "arl_rounds": self.settings.arl_rounds,
                "rounds": fire.rounds,
            },
        )
        self.tx.fire_alert(alert_id, fired, self.now)
        return self._transition(alert_id, fire.before, "firing", change_id)

    def _evidence(self, since: datetime) -> tuple[list[int], dict[str, Any] | None]:
        """The flagged results since ``since`` (newest first) and their session impact."""
        evidence = self.tx.flagged_result_ids(
            self.cohort_id, self.metric, since=since, limit=self.settings.evidence_limit
        )
        impacts = self.tx.impact(
            ResultFilter(labels=self.labels, since=since), [self.metric], ("endpoint",)
        )
        impact = (
            {k: v for k, v in impacts[0].to_dict().items() if k != "labels"} if impacts else None
        )
        return evidence, impact

    def _escalate(self, action: Escalate) -> int:
        """Open and fire the escalation: its own alert, attributed to the change, its evidence
        and impact counted from the change; its baseline is the rate already explained."""
        from canary.store.alerts import FiredAlert, NewAlert

        onset = action.onset or action.change_at
        alert_id = self.tx.open_alert(
            NewAlert(
                fingerprint=self.fingerprint,
                labels=self.labels,
                metric=self.metric,
                onset_at=onset,
                baseline_rate=action.level,
                margin=action.margin,
                k=action.k,
                n=action.n,
                score=action.score,
            ),
            self.now,
        )
        since = min(onset, action.change_at)
        evidence, impact = self._evidence(since)
        fired = FiredAlert(
            onset_at=onset,
            change_id=action.change_id,
            baseline_rate=action.level,
            margin=action.margin,
            k=action.k,
            n=action.n,
            score=action.score,
            evidence_ids=evidence,
            impact=impact,
            detail={
                "baseline": self.settings.baseline_name,
                "escalation_of": action.parent,
                "cohort_baseline_rate": action.baseline_rate,
                "threshold_nats": action.threshold,
                "alternative_rate": action.alternative,
                "arl_rounds": self.settings.arl_rounds,
                "rounds": action.rounds,
            },
        )
        self.tx.fire_alert(alert_id, fired, self.now)
        return alert_id

    def _update_evidence(
        self, alert_id: int, tally: AlertTally, action: UpdateEvidence, run_id: int
    ) -> None:
        """Add a firing round's counts and flagged results to the alert."""
        from canary.store.alerts import AlertTally

        evidence = list(tally.evidence_ids)
        if action.wanted > 0:
            evidence += self.tx.flagged_result_ids(
                self.cohort_id, self.metric, run_id=run_id, limit=action.wanted
            )
        added = AlertTally(tally.k + action.k, tally.n + action.n, tuple(evidence))
        self.tx.tally_alert(alert_id, added, self.now)

    def _transition(
        self, alert_id: int, before: str, after: str, change_id: str | None
    ) -> Transition:
        return Transition(
            alert_id, self.fingerprint, self.labels, self.metric, before, after, change_id
        )
