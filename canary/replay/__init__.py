"""Incident replay: a scenario of changes and real faults on the simulated fleet, judged."""

from canary.replay.analysis import ReplayReport, analyse
from canary.replay.runner import ReplayRun, run_scenario
from canary.replay.scenario import Scenario, Step, load_scenario
from canary.replay.warmup import baseline_then_alerting

__all__ = [
    "ReplayReport",
    "ReplayRun",
    "Scenario",
    "Step",
    "analyse",
    "baseline_then_alerting",
    "load_scenario",
    "run_scenario",
]
