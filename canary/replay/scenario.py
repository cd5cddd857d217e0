"""A replay scenario: a healthy fleet, then a timeline of recorded changes that switch real
faults on and off in the simulated fleet, probed on a normal daemon schedule.

Simulated time advances one schedule slot per tick; the fleet really serves and canary really
probes, scores and judges every slot, so detection delays are measured in probes and in
simulated hours at the stated probe budget. See ``config/replay/postmortem.yaml``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canary.daemon.config import AdaptiveConfig, ScheduleConfig
from canary.timespec import parse_duration


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolFaults(Strict):
    """Faults of one pool, as the simulated fleet's admin API takes them (null switches off)."""

    pool: str
    faults: dict[str, dict[str, Any] | str | int | None]
    """A fault's settings (null: off), or a pool setting such as ``weights: int4``."""


class Step(Strict):
    """One recorded change at a simulated time, and what it does to the fleet."""

    at: str
    """Simulated time after the baseline, e.g. `8h`."""
    change: str
    """The change id recorded (a deploy id, a ticket)."""
    kind: Literal["deploy", "config", "lb", "model"]
    select: dict[str, str] = Field(default_factory=dict)
    """The cohorts the change touches, as recorded."""
    note: str = ""
    pool_faults: PoolFaults | None = None
    """Switch faults of a pool."""
    misroute_share: Annotated[float, Field(ge=0, le=1)] | None = None
    """Set the front door's misrouting share (sticky per session)."""
    starts: str | None = None
    """The name of the fault this step starts (for the results table)."""
    ends: str | None = None
    """The name of the fault this step rolls back."""
    affects: list[dict[str, str]] = Field(default_factory=list)
    """Cohorts (label subsets) the started fault degrades: an alert on any other cohort while
    no fault affecting it is active is a false alert."""

    @property
    def offset(self) -> timedelta:
        return parse_duration(self.at)


class Scenario(Strict):
    """A whole replay."""

    name: str
    description: str = ""
    tick: str = "10m"
    """Simulated time per tick: the shortest schedule period."""
    baseline: str = "6h"
    """Healthy simulated time whose results become the baseline."""
    after: str = "24h"
    """Simulated time replayed after the baseline."""
    schedules: list[ScheduleConfig]
    """The daemon's normal schedule (periods in simulated time)."""
    false_alarms_per_year: Annotated[float, Field(gt=0)] = 1.0
    margins: dict[str, Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=dict)
    """Per-metric alert margins (the smallest increase worth an alert), as in a daemon config."""
    adaptive: AdaptiveConfig = Field(default_factory=AdaptiveConfig)
    """Adaptive probing for the alerting daemon (`canary.daemon.adaptive`); off by default."""
    impact_cohort: dict[str, str] = Field(default_factory=lambda: {"route": "front-door"})
    """Where request- and session-level impact of misrouting is measured (users' sessions)."""
    steps: list[Step]

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        started = {s.starts for s in self.steps if s.starts}
        for step in self.steps:
            if step.ends and step.ends not in started:
                raise ValueError(f"step {step.change!r} ends {step.ends!r}, which no step starts")
            if step.offset > parse_duration(self.after):
                raise ValueError(f"step {step.change!r} at {step.at} is after the replay ends")
        return self

    @property
    def tick_period(self) -> timedelta:
        return parse_duration(self.tick)

    def ticks(self, span: str) -> int:
        return int(parse_duration(span) / self.tick_period)


def scenario_path(name_or_path: str) -> Path:
    """A shipped scenario by name (`postmortem`) or a path to a YAML file."""
    from canary.resources import resource_dir

    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return resource_dir("config") / "replay" / f"{name_or_path}.yaml"


def load_scenario(name_or_path: str) -> Scenario:
    from canary.config.loading import load_model_file

    return load_model_file(Scenario, scenario_path(name_or_path))
