"""`canary demo`: the whole loop on a fresh machine, in a few minutes, with nothing to set up.

The demo is the shipped replay scenario `demo` (`config/replay/demo.yaml`) run by the replay
code: it serves the simulated fleet in-process, probes it on the daemon's own code path (slots,
scoring against the reference model, CUSUM monitors), captures a baseline of the healthy fleet,
records a deploy that switches a real fault on in one pool (logits corrupted towards rare
scripts), and runs rounds until the canary alerts on that pool, attributed to that deploy. Slot
times are simulated hours ending now, so the timeline reads like a day of operation.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from canary.store.alert_values import Alert

if TYPE_CHECKING:
    from canary.daemon.outcome import SlotOutcome
    from canary.replay.scenario import Scenario

DEMO_SCENARIO = "demo"
DEMO_BASELINE = "demo-healthy"
DEMO_CHANGE = "demo-deploy-tpu-1"
"""The deploy the shipped scenario records (and the alert must be attributed to)."""
FAULTY_POOL = "tpu-bf16"
"""The pool that deploy breaks."""

Progress = Callable[[str], None]


@dataclass
class DemoResult:
    database_url: str
    healthy_rounds: int
    fault_rounds: int
    alerts: list[Alert] = field(default_factory=list)
    change: str = DEMO_CHANGE
    pool: str = FAULTY_POOL

    @property
    def detected(self) -> bool:
        """An alert fires on the faulty pool, attributed to the deploy that broke it."""
        return any(
            a.status == "firing"
            and a.labels.get("pool") == self.pool
            and a.change_id == self.change
            for a in self.alerts
        )


def run_demo(
    workdir: Path | None = None,
    *,
    healthy_rounds: int | None = None,
    max_fault_rounds: int | None = None,
    progress: Progress = lambda _: None,
) -> DemoResult:
    """Baseline → change → fault → alert, on a SQLite file in ``workdir`` (default: a temp dir).

    ``healthy_rounds`` and ``max_fault_rounds`` shorten or lengthen the scenario's baseline and
    the rounds after the change (default: as the scenario says).
    """
    from canary.alerts.queries import list_alerts
    from canary.errors import ConfigError
    from canary.replay import load_scenario, run_scenario
    from canary.store import open_store

    scenario = _sized(load_scenario(DEMO_SCENARIO), healthy_rounds, max_fault_rounds)
    faulty = next((s for s in scenario.steps if s.pool_faults is not None), None)
    if faulty is None or faulty.pool_faults is None:
        raise ConfigError(f"replay scenario {DEMO_SCENARIO!r} switches no pool's faults on")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="canary-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'canary.db'}"
    store = open_store(url)
    baseline_ticks = scenario.ticks(scenario.baseline)
    result = DemoResult(url, baseline_ticks, 0, change=faulty.change, pool=faulty.pool_faults.pool)
    progress(f"database {workdir / 'canary.db'}; starting the simulated fleet")

    def judged(i: int, outcomes: list[SlotOutcome]) -> bool:
        result.fault_rounds = i + 1
        fired = [
            t for o in outcomes for r in o.rounds for t in r.transitions if t["after"] == "firing"
        ]
        progress(
            f"round {i + 1} after the change: "
            + (f"{len(fired)} alert(s) firing" if fired else "no alert yet")
        )
        result.alerts = list_alerts(store, status=["firing", "pending"])
        return result.detected

    # A day back from the current hour, so the demo's timeline ends about now.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    run_scenario(
        store,
        scenario,
        progress=progress,
        baseline_name=DEMO_BASELINE,
        start=hour - timedelta(days=1),
        owner="canary-demo",
        until=judged,
    )
    return result


def _sized(scenario: Scenario, healthy: int | None, after: int | None) -> Scenario:
    """The scenario with ``healthy`` baseline ticks and ``after`` ticks after it, where given."""
    seconds = scenario.tick_period.total_seconds()
    update: dict[str, str] = {}
    if healthy is not None:
        update["baseline"] = f"{int(healthy * seconds)}s"
    if after is not None:
        update["after"] = f"{int(after * seconds)}s"
    return scenario.model_copy(update=update)
