"""The replay's results table: detection delay per fault against the theoretical minimum,
attribution, resolution, false alerts, and request- vs session-level impact."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from canary.alerts.attribution import change_touches
from canary.alerts.queries import list_alerts
from canary.config.selection import labels_match
from canary.records import ResultFilter
from canary.replay.runner import AppliedStep, ReplayRun
from canary.stats.cusum import oracle_detection_probes
from canary.store import Store
from canary.store.alert_values import Alert, cohort_text
from canary.store.replay import cohort_labels, cohort_window

#: An alert firing this many ticks after its fault's rollback still belongs to the fault.
LAG_TICKS = 6


@dataclass
class FaultRow:
    """One fault of the scenario: whether, where, how fast and to what it was attributed."""

    fault: str
    change: str
    detected: bool
    cohort: str = "-"
    metric: str = "-"
    attributed_to: str | None = None
    delay_ticks: int | None = None
    delay_sim: str = "-"
    delay_probes: int | None = None
    """Probes of the detecting cohort × metric from the change to the alert."""
    delay_sessions: int | None = None
    """The same in sessions, the monitors' independent unit (equal for one-turn probes)."""
    oracle_sessions: float | None = None
    """Expected sessions of the oracle test that knows the post-change rate (same threshold)."""
    minimum_sessions: float | None = None
    """The oracle's sessions rounded up to whole rounds of this cohort: at this budget no test
    checked after each round can stop sooner (the theoretical minimum for rate and budget)."""
    ratio: float | None = None
    rate: float | None = None
    """Session flag rate in the detecting cohort from the change to the next change touching
    that cohort (while this fault alone was the cause)."""
    baseline_rate: float | None = None
    resolved_after_rollback: bool | None = None
    early_resolves: int = 0
    """Alerts of the fault that resolved before its rollback (the data recovered early)."""
    resolved_ticks: int | None = None
    """Ticks from the rollback to the last of its alerts resolving."""
    escalation: bool = False
    """Detected as an escalation: its own episode on a cohort × metric already firing for an
    earlier fault (no masking)."""
    escalations: int = 0
    """Its alerts that are escalations, whether or not one of them was the first."""

    @property
    def attribution_text(self) -> str:
        """The change it is attributed to, and how its escalations showed."""
        text = self.attributed_to or "-"
        if self.escalation:
            return f"{text} (escalation)"
        if self.escalations:
            return f"{text} (+{self.escalations} escalation{'s' * (self.escalations > 1)})"
        return text

    other_cohorts: list[str] = field(default_factory=list)

    @property
    def met_goals(self) -> bool:
        """Detected, attributed to its own change, within 2× the minimum."""
        return (
            self.detected
            and self.attributed_to == self.change
            and self.ratio is not None
            and self.ratio <= 2.0
        )


@dataclass
class ImpactRow:
    """Request- and session-level impact at the front door while one misrouting share held."""

    phase: str
    requests: int
    request_rate: float
    sessions: int
    session_rate: float


@dataclass
class ReplayReport:
    """The replay's results, as a value: `canary.replay.render` prints it as a table or
    Markdown, `to_dict` as JSON."""

    scenario: str
    seconds: float
    faults: list[FaultRow]
    false_alerts: list[str]
    misattributed: list[str]
    impact: list[ImpactRow]
    budget: list[str]

    @property
    def passed(self) -> bool:
        """Every fault met its goals and no healthy cohort alerted."""
        return all(f.met_goals for f in self.faults) and not self.false_alerts

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def analyse(store: Store, run: ReplayRun) -> ReplayReport:
    """Judge a finished replay from what it stored: its alerts, scores and sessions."""
    alerts = [a for a in list_alerts(store, limit=10_000) if a.fired_at is not None]
    starts = {a.step.starts: a for a in run.applied if a.step.starts is not None}
    ends = {a.step.ends: a for a in run.applied if a.step.ends is not None}
    cohorts = cohort_labels(store)
    cohort_ids = {cohort_text(labels): cohort_id for cohort_id, labels in cohorts.items()}
    faults = [
        _fault_row(store, run, name, start, ends.get(name), alerts, cohort_ids)
        for name, start in starts.items()
    ]
    false_alerts, misattributed = _judge_alerts(run, alerts, starts, ends)
    return ReplayReport(
        scenario=run.scenario.name,
        seconds=run.seconds,
        faults=faults,
        false_alerts=false_alerts,
        misattributed=misattributed,
        impact=_impact(store, run, cohorts),
        budget=_budget(run),
    )


def _fault_row(
    store: Store,
    run: ReplayRun,
    name: str,
    start: AppliedStep,
    end: AppliedStep | None,
    alerts: list[Alert],
    cohort_ids: dict[str, int],
) -> FaultRow:
    row = FaultRow(name, start.step.change, detected=False)
    # An alert of its own comes first; an escalation of another fault's alert second.
    mine = sorted(
        (a for a in alerts if a.change_id == start.step.change),
        key=lambda a: (a.detail.get("escalation_of") is not None, a.fired_at or a.pending_at),
    )
    if not mine:
        return row
    first = mine[0]
    assert first.fired_at is not None
    row.detected = True
    row.escalation = first.detail.get("escalation_of") is not None
    row.escalations = sum(a.detail.get("escalation_of") is not None for a in mine)
    row.cohort, row.metric, row.attributed_to = first.cohort, first.metric, first.change_id
    row.other_cohorts = sorted({f"{a.cohort} {a.metric}" for a in mine[1:]})
    ticks = run.tick_of(first.fired_at) - start.tick + 1
    row.delay_ticks = ticks
    row.delay_sim = _duration(ticks * run.scenario.tick_period)
    cohort_id = cohort_ids[first.cohort]
    delay = cohort_window(store, cohort_id, first.metric, start.at, first.fired_at)
    n_delay = delay.sessions
    row.delay_sessions = n_delay
    row.delay_probes = delay.probes
    until = _next_touching(run, start, first.labels)
    alone = cohort_window(store, cohort_id, first.metric, start.at, until)
    k, n = alone.flagged_sessions, alone.sessions
    row.rate = k / n if n else None
    row.baseline_rate = first.baseline_rate
    threshold = float(first.detail.get("threshold_nats", 0.0))
    if row.rate is not None and row.rate > first.baseline_rate and threshold > 0:
        row.oracle_sessions = oracle_detection_probes(first.baseline_rate, row.rate, threshold)
        per_round = n / max(alone.rounds, 1)
        row.minimum_sessions = math.ceil(row.oracle_sessions / per_round) * per_round
        row.ratio = n_delay / row.minimum_sessions
    if end is not None:
        # The fault's alerting ends after its rollback: every alert closed, the last one after
        # the rollback. One metric may recover earlier in the data itself (approximate top-k
        # bites only in batches; misrouting half the sessions away shrinks the GPU pool's
        # batches), which `early_resolves` counts rather than hides.
        closed = [a.resolved_at for a in mine if a.resolved_at is not None]
        row.resolved_after_rollback = len(closed) == len(mine) and max(closed) >= end.at
        row.early_resolves = sum(at < end.at for at in closed)
        if row.resolved_after_rollback:
            last = max(run.tick_of(a.resolved_at) for a in mine if a.resolved_at is not None)
            row.resolved_ticks = last - end.tick
    return row


@dataclass
class DelayRow:
    """One fault's detection delay without and with adaptive probing (same scenario)."""

    fault: str
    ticks: int | None
    sessions: int | None
    adaptive_ticks: int | None
    adaptive_sessions: int | None


def compare_delays(plain: ReplayReport, adaptive: ReplayReport) -> list[DelayRow]:
    """Detection delays of the same faults in a replay without and with adaptive probing."""
    boosted = {f.fault: f for f in adaptive.faults}
    rows = []
    for f in plain.faults:
        other = boosted.get(f.fault)
        rows.append(
            DelayRow(
                f.fault,
                f.delay_ticks,
                f.delay_sessions,
                other.delay_ticks if other else None,
                other.delay_sessions if other else None,
            )
        )
    return rows


def _next_touching(run: ReplayRun, start: AppliedStep, labels: dict[str, str]) -> datetime:
    """When the next recorded change touching ``labels`` came after ``start`` (or the end of
    time: every later result counts)."""
    later = [a.at for a in run.applied if a.at > start.at and change_touches(a.step.select, labels)]
    return min(later, default=datetime.max.replace(tzinfo=start.at.tzinfo))


def _judge_alerts(
    run: ReplayRun,
    alerts: list[Alert],
    starts: dict[str, AppliedStep],
    ends: dict[str, AppliedStep],
) -> tuple[list[str], list[str]]:
    """False alerts: no active fault affects the cohort. Misattributed: attributed elsewhere."""
    false_alerts: list[str] = []
    misattributed: list[str] = []
    for alert in alerts:
        assert alert.fired_at is not None
        fired_tick = run.tick_of(alert.fired_at)
        causes = []
        for name, start in starts.items():
            end = ends.get(name)
            active = start.tick <= fired_tick and (
                end is None or fired_tick <= end.tick + LAG_TICKS
            )
            affected = any(labels_match(alert.labels, cohort) for cohort in start.step.affects)
            if active and affected:
                causes.append(start)
        text = f"{alert.cohort} {alert.metric} (alert {alert.id})"
        if not causes:
            false_alerts.append(text)
        elif alert.change_id not in {c.step.change for c in causes} and not _escalates(
            run, alert.change_id, causes
        ):
            misattributed.append(f"{text} → {alert.change_id}")
    return false_alerts, misattributed


def _escalates(run: ReplayRun, change_id: str | None, causes: list[AppliedStep]) -> bool:
    """A change that changes an active fault's size (the LB change raising misrouting)."""
    for applied in run.applied:
        if applied.step.change == change_id and applied.step.misroute_share:
            return any(c.step.misroute_share for c in causes)
    return False


def _impact(store: Store, run: ReplayRun, cohorts: dict[int, dict[str, str]]) -> list[ImpactRow]:
    from canary.store.impact import session_impact

    where = run.scenario.impact_cohort
    rows = []
    for current in (a for a in run.applied if a.step.misroute_share is not None):
        share = current.step.misroute_share or 0.0
        # Until the next change touching the front door: misrouting alone in the window.
        until = _next_touching(run, current, {**where, "pools": _pools(cohorts, where)})
        impact = session_impact(
            store,
            ResultFilter(labels=dict(where), since=current.at, until=until),
            metrics=["first_divergence"],
            group_by=tuple(where),
        )
        for i in impact:
            rows.append(
                ImpactRow(
                    f"misrouting {share:.1%} ({current.step.change})",
                    i.requests,
                    i.request_rate,
                    i.sessions,
                    i.session_rate,
                )
            )
    return rows


def _pools(cohorts: dict[int, dict[str, str]], labels: dict[str, str]) -> str:
    """The ``pools`` label of the cohorts matching ``labels`` (front doors name their pools)."""
    for cohort in cohorts.values():
        if labels_match(cohort, labels):
            return str(cohort.get("pools", ""))
    return ""


def _budget(run: ReplayRun) -> list[str]:
    out = []
    for s in run.scenario.schedules:
        out.append(f"{s.name}: suite {s.suite} every {s.every or s.cron}, loads {s.loads}")
    return out


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"
