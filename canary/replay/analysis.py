"""The replay's results table: detection delay per fault against the theoretical minimum,
attribution, resolution, false alerts, and request- vs session-level impact."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, distinct, func, select

from canary.alerts.attribution import change_touches, counts_since
from canary.alerts.model import Alert, cohort_text
from canary.alerts.queries import list_alerts
from canary.config.selection import labels_match
from canary.replay.runner import AppliedStep, ReplayRun
from canary.stats.cusum import oracle_detection_probes
from canary.store import Store
from canary.store.models import CohortRow, ResultRow, ScoreRow

#: An alert firing this many ticks after its fault's rollback still belongs to the fault.
LAG_TICKS = 6


@dataclass
class FaultRow:
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
    phase: str
    requests: int
    request_rate: float
    sessions: int
    session_rate: float


@dataclass
class ReplayReport:
    scenario: str
    seconds: float
    faults: list[FaultRow]
    false_alerts: list[str]
    misattributed: list[str]
    impact: list[ImpactRow]
    budget: list[str]

    @property
    def passed(self) -> bool:
        return all(f.met_goals for f in self.faults) and not self.false_alerts

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def to_markdown(self) -> str:
        lines = [
            "| fault | change | detected in | delay (sim) | probes (sessions) | theoretical min "
            "(sessions; oracle) | ratio | session rate vs baseline | attributed to | resolved "
            "after rollback |",
            "|---|---|---|---|---:|---:|---:|---|---|---|",
        ]
        for f in self.faults:
            lines.append(
                f"| {f.fault} | {f.change} | {f.cohort} {f.metric} | {f.delay_sim} | "
                f"{_n(f.delay_probes)} ({_n(f.delay_sessions)}) | {_n(f.minimum_sessions)}; "
                f"{_n(f.oracle_sessions)} | "
                f"{_r(f.ratio)} | "
                f"{_pct(f.rate)} vs {_pct(f.baseline_rate)} | {f.attributed_to or '-'} | "
                f"{_yes(f.resolved_after_rollback)} |"
            )
        lines.append("")
        lines.append(
            f"False alerts on healthy cohorts: **{len(self.false_alerts)}**; misattributed "
            f"alerts: **{len(self.misattributed)}**; wall time {self.seconds / 60:.1f} min."
        )
        lines.append("")
        lines.append(
            "| front-door user sessions, first_divergence | requests | request rate | sessions "
            "| session rate |"
        )
        lines.append("|---|---:|---:|---:|---:|")
        for i in self.impact:
            lines.append(
                f"| {i.phase} | {i.requests} | {i.request_rate:.2%} | {i.sessions} | "
                f"{i.session_rate:.2%} |"
            )
        return "\n".join(lines)


def analyse(store: Store, run: ReplayRun) -> ReplayReport:
    alerts = [a for a in list_alerts(store, limit=10_000) if a.fired_at is not None]
    starts = {a.step.starts: a for a in run.applied if a.step.starts is not None}
    ends = {a.step.ends: a for a in run.applied if a.step.ends is not None}
    with store.engine.connect() as conn:
        cohort_ids = {
            cohort_text(labels): cohort_id
            for cohort_id, labels in conn.execute(select(CohortRow.id, CohortRow.labels))
        }
        faults = [
            _fault_row(conn, run, name, start, ends.get(name), alerts, cohort_ids)
            for name, start in starts.items()
        ]
    false_alerts, misattributed = _judge_alerts(run, alerts, starts, ends)
    return ReplayReport(
        scenario=run.scenario.name,
        seconds=run.seconds,
        faults=faults,
        false_alerts=false_alerts,
        misattributed=misattributed,
        impact=_impact(store, run),
        budget=_budget(run),
    )


def _fault_row(
    conn: Connection,
    run: ReplayRun,
    name: str,
    start: AppliedStep,
    end: AppliedStep | None,
    alerts: list[Alert],
    cohort_ids: dict[str, int],
) -> FaultRow:
    row = FaultRow(name, start.step.change, detected=False)
    mine = sorted(
        (a for a in alerts if a.change_id == start.step.change),
        key=lambda a: a.fired_at or a.pending_at,
    )
    if not mine:
        return row
    first = mine[0]
    assert first.fired_at is not None
    row.detected = True
    row.cohort, row.metric, row.attributed_to = first.cohort, first.metric, first.change_id
    row.other_cohorts = sorted({f"{a.cohort} {a.metric}" for a in mine[1:]})
    ticks = run.tick_of(first.fired_at) - start.tick + 1
    row.delay_ticks = ticks
    row.delay_sim = _duration(ticks * run.scenario.tick_period)
    cohort_id = cohort_ids[first.cohort]
    _, n_delay = counts_since(conn, cohort_id, first.metric, start.at, first.fired_at)
    row.delay_sessions = n_delay
    row.delay_probes = _probes(conn, cohort_id, first.metric, start.at, first.fired_at)
    until = _next_touching(run, start, first.labels)
    k, n = counts_since(conn, cohort_id, first.metric, start.at, until)
    row.rate = k / n if n else None
    row.baseline_rate = first.baseline_rate
    threshold = float(first.detail.get("threshold_nats", 0.0))
    if row.rate is not None and row.rate > first.baseline_rate and threshold > 0:
        row.oracle_sessions = oracle_detection_probes(first.baseline_rate, row.rate, threshold)
        per_round = n / max(_rounds(conn, cohort_id, start.at, until), 1)
        row.minimum_sessions = math.ceil(row.oracle_sessions / per_round) * per_round
        row.ratio = n_delay / row.minimum_sessions
    if end is not None:
        row.resolved_after_rollback = all(
            a.resolved_at is not None and a.resolved_at >= end.at for a in mine
        )
    return row


def _next_touching(run: ReplayRun, start: AppliedStep, labels: dict[str, str]) -> datetime:
    """When the next recorded change touching ``labels`` came after ``start`` (or the end of
    time: every later result counts)."""
    later = [a.at for a in run.applied if a.at > start.at and change_touches(a.step.select, labels)]
    return min(later, default=datetime.max.replace(tzinfo=start.at.tzinfo))


def _rounds(conn: Connection, cohort_id: int, since: datetime, until: datetime) -> int:
    return int(
        conn.execute(
            select(func.count(distinct(ResultRow.run_id))).where(
                ResultRow.cohort_id == cohort_id,
                ResultRow.started_at >= since,
                ResultRow.started_at <= until,
            )
        ).scalar_one()
    )


def _probes(conn: Connection, cohort_id: int, metric: str, since: datetime, until: datetime) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(ResultRow)
            .join(ScoreRow, ScoreRow.result_id == ResultRow.id)
            .where(
                ResultRow.cohort_id == cohort_id,
                ResultRow.started_at >= since,
                ResultRow.started_at <= until,
                ScoreRow.metric == metric,
            )
        ).scalar_one()
    )


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


def _impact(store: Store, run: ReplayRun) -> list[ImpactRow]:
    from canary.stats.impact import session_impact

    where = run.scenario.impact_cohort
    rows = []
    for current in (a for a in run.applied if a.step.misroute_share is not None):
        share = current.step.misroute_share or 0.0
        # Until the next change touching the front door: misrouting alone in the window.
        until = _next_touching(run, current, {**where, "pools": _pools(store, where)})
        impact = session_impact(
            store,
            since=current.at,
            until=until,
            labels=where,
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


def _pools(store: Store, labels: dict[str, str]) -> str:
    """The ``pools`` label of the cohorts matching ``labels`` (front doors name their pools)."""
    with store.engine.connect() as conn:
        for (cohort_labels,) in conn.execute(select(CohortRow.labels)):
            if labels_match(cohort_labels, labels):
                return str(cohort_labels.get("pools", ""))
    return ""


def _budget(run: ReplayRun) -> list[str]:
    out = []
    for s in run.scenario.schedules:
        out.append(f"{s.name}: suite {s.suite} every {s.every or s.cron}, loads {s.loads}")
    return out


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _n(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}×"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _yes(x: bool | None) -> str:
    return "-" if x is None else ("yes" if x else "no")
