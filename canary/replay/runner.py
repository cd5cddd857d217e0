"""Run a scenario: the simulated fleet, the daemon's schedules tick by tick, changes applied."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from canary.replay.scenario import Scenario, Step
from canary.store import Store

BASELINE_NAME = "replay-baseline"
Progress = Callable[[str], None]


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


def run_scenario(store: Store, scenario: Scenario, *, progress: Progress = print) -> ReplayRun:
    """Replay ``scenario`` against a fresh simulated fleet, storing everything in ``store``."""
    from canary.compare.baselines import capture_baseline
    from canary.daemon.config import DaemonConfig
    from canary.daemon.service import Daemon
    from canary.records import ResultFilter
    from canary.sim.embedded import embedded_fleet
    from canary.store.changes import record_change

    began = time.perf_counter()
    run = ReplayRun(scenario)
    schedules = [s.model_dump() for s in scenario.schedules]
    sim_start = datetime(2026, 8, 5, tzinfo=UTC)
    with embedded_fleet() as fleet:
        admin = fleet.endpoints[0].base_url.removesuffix("/v1")
        healthy = Daemon(
            DaemonConfig.model_validate({"sim": True, "schedules": schedules}),
            fleet,
            store,
            owner="replay",
        )
        run.baseline_ticks = scenario.ticks(scenario.baseline)
        for i in range(run.baseline_ticks):
            healthy.tick(sim_start + i * scenario.tick_period)
            if i % 6 == 5:
                progress(f"baseline: {(i + 1) * scenario.tick_period} simulated")
        capture_baseline(
            store,
            BASELINE_NAME,
            ResultFilter(),
            ("endpoint", "load"),
            note=f"the first {scenario.baseline} of the replay",
            replace=True,
        )
        daemon = Daemon(
            DaemonConfig.model_validate(
                {
                    "sim": True,
                    "schedules": schedules,
                    "alerts": {
                        "baseline": BASELINE_NAME,
                        "false_alarms_per_year": scenario.false_alarms_per_year,
                        "margins": scenario.margins,
                    },
                }
            ),
            fleet,
            store,
            owner="replay",
        )
        pending = sorted(scenario.steps, key=lambda s: s.offset)
        for i in range(scenario.ticks(scenario.after)):
            offset = i * scenario.tick_period
            while pending and pending[0].offset <= offset:
                step = pending.pop(0)
                _apply(admin, step)
                at = datetime.now(UTC)
                record_change(store, step.change, step.kind, step.select, at, note=step.note)
                run.applied.append(AppliedStep(step, i, at))
                progress(f"{_hours(offset)}: {step.kind} {step.change} — {step.note}".rstrip(" —"))
            run.tick_times.append(datetime.now(UTC))
            outcomes = daemon.tick(sim_start + (run.baseline_ticks + i) * scenario.tick_period)
            for o in outcomes:
                for r in o.rounds:
                    for t in r.transitions:
                        if t["after"] in ("firing", "resolved"):
                            progress(
                                f"{_hours(offset)}: {t['after']} {t['metric']} on "
                                f"{t['labels'].get('endpoint')} load={t['labels'].get('load')}"
                                + (f" ← {t['change_id']}" if t.get("change_id") else "")
                            )
    run.seconds = time.perf_counter() - began
    return run


def _apply(admin: str, step: Step) -> None:
    import httpx as client

    if step.pool_faults is not None:
        client.put(
            f"{admin}/admin/pools/{step.pool_faults.pool}/faults",
            json=step.pool_faults.faults,
            timeout=30,
        ).raise_for_status()
    if step.misroute_share is not None:
        client.put(
            f"{admin}/admin/router", json={"misroute_share": step.misroute_share}, timeout=30
        ).raise_for_status()


def _hours(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    return f"+{minutes // 60:02d}:{minutes % 60:02d}"
