"""Run a scenario: the simulated fleet, the daemon's schedules tick by tick, changes applied."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from canary.replay.scenario import Scenario, Step
from canary.store import Store

if TYPE_CHECKING:
    from canary.daemon.outcome import SlotOutcome
    from canary.sim.admin_client import AdminClient

BASELINE_NAME = "replay-baseline"
SIM_START = datetime(2026, 8, 5, tzinfo=UTC)
"""Where a replay's simulated clock starts."""
Progress = Callable[[str], None]
Until = Callable[[int, "list[SlotOutcome]"], bool]
"""Asked after each tick past the baseline with its index and outcomes: stop now?"""


@dataclass(frozen=True)
class AppliedStep:
    step: Step
    tick: int
    """Ticks after the baseline when it was applied."""
    at: datetime
    """The real time the fault switched (results are stamped in real time)."""


@dataclass
class ReplayRun:
    """What the replay did, for the analysis: when each step and each tick happened."""

    scenario: Scenario
    applied: list[AppliedStep] = field(default_factory=list)
    tick_times: list[datetime] = field(default_factory=list)
    """Real start time of each tick after the baseline."""
    baseline_ticks: int = 0
    seconds: float = 0.0

    def tick_of(self, when: datetime) -> int:
        """The tick (after the baseline) during which ``when`` fell."""
        return max(bisect.bisect_right(self.tick_times, when) - 1, 0)


def run_scenario(
    store: Store,
    scenario: Scenario,
    *,
    progress: Progress = print,
    baseline_name: str = BASELINE_NAME,
    start: datetime = SIM_START,
    owner: str = "replay",
    until: Until | None = None,
) -> ReplayRun:
    """Replay ``scenario`` against a fresh simulated fleet, storing everything in ``store``.

    Slot times run from ``start`` in simulated time; results and changes are stamped in real
    time. ``until`` is asked after every tick past the baseline and ends the replay early when
    it answers true (the demo stops at its first attributed alert).
    """
    from canary.replay.warmup import baseline_then_alerting
    from canary.sim.admin_client import AdminClient
    from canary.sim.embedded import embedded_fleet
    from canary.store.changes import record_change

    began = time.perf_counter()
    run = ReplayRun(scenario)
    schedules = [s.model_dump() for s in scenario.schedules]
    period = scenario.tick_period
    run.baseline_ticks = scenario.ticks(scenario.baseline)
    every = max(run.baseline_ticks // 6, 1)

    def healthy_tick(i: int, outcomes: list[SlotOutcome]) -> None:
        if (i + 1) % every == 0 or i + 1 == run.baseline_ticks:
            sent = sum(r.sent for o in outcomes for r in o.rounds)
            simulated = _hours((i + 1) * period).lstrip("+")
            progress(
                f"healthy round {i + 1}/{run.baseline_ticks}, {simulated} simulated: "
                f"{sent} probes sent"
            )

    with embedded_fleet() as fleet:
        admin = AdminClient(fleet.endpoints[0].base_url.removesuffix("/v1"))
        daemon = baseline_then_alerting(
            store,
            fleet,
            [start + i * period for i in range(run.baseline_ticks)],
            healthy={"sim": True, "schedules": schedules},
            alerting={
                "sim": True,
                "schedules": schedules,
                "alerts": {
                    "false_alarms_per_year": scenario.false_alarms_per_year,
                    "margins": scenario.margins,
                },
                "adaptive": scenario.adaptive.model_dump(),
            },
            baseline=baseline_name,
            note=f"the first {scenario.baseline} of the replay",
            owner=owner,
            on_healthy_tick=healthy_tick,
        )
        progress(f"baseline {baseline_name!r} captured from the healthy fleet")
        pending = sorted(scenario.steps, key=lambda s: s.offset)
        for i in range(scenario.ticks(scenario.after)):
            offset = i * period
            while pending and pending[0].offset <= offset:
                step = pending.pop(0)
                _apply(admin, step)
                at = datetime.now(UTC)
                record_change(
                    store, step.change, step.kind, step.select, at, note=_note(scenario, step)
                )
                run.applied.append(AppliedStep(step, i, at))
                progress(f"{_hours(offset)}: {step.kind} {step.change} recorded; {_does(step)}")
            run.tick_times.append(datetime.now(UTC))
            outcomes = daemon.tick(start + (run.baseline_ticks + i) * period)
            for o in outcomes:
                for r in o.rounds:
                    for t in r.transitions:
                        if t["after"] in ("firing", "resolved"):
                            progress(
                                f"{_hours(offset)}: {t['after']} {t['metric']} on "
                                f"{t['labels'].get('endpoint')} load={t['labels'].get('load')}"
                                + (f" ← {t['change_id']}" if t.get("change_id") else "")
                            )
            if until is not None and until(i, outcomes):
                break
    run.seconds = time.perf_counter() - began
    return run


def _note(scenario: Scenario, step: Step) -> str:
    """The recorded note; a step that ends a fault says which change it rolls back, the way
    an operator's rollback would (`canary.alerts.attribution.rollback_of` reads it)."""
    started = {s.starts: s.change for s in scenario.steps if s.starts}
    if step.ends is None or step.ends not in started:
        return step.note
    said = f"rollback of {started[step.ends]}"
    return f"{said}; {step.note}" if step.note else said


def _apply(admin: AdminClient, step: Step) -> None:
    if step.pool_faults is not None:
        admin.set_faults(step.pool_faults.pool, step.pool_faults.faults)
    if step.misroute_share is not None:
        admin.set_router({"misroute_share": step.misroute_share})


def _does(step: Step) -> str:
    """What a step does to the fleet, in a few words (the note says why)."""
    parts = []
    if step.pool_faults is not None:
        switched = ", ".join(
            f"{name} {'off' if value is None else 'on' if isinstance(value, dict) else value}"
            for name, value in step.pool_faults.faults.items()
        )
        parts.append(f"{switched} in pool {step.pool_faults.pool}")
    if step.misroute_share is not None:
        parts.append(f"misrouting {step.misroute_share:.0%} of front-door sessions")
    described = "; ".join(parts) or "nothing switched"
    return f"{described} — {step.note}" if step.note else described


def _hours(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    return f"+{minutes // 60:02d}:{minutes % 60:02d}"
