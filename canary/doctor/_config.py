"""Config checks: the daemon and fleet files validate, every schedule's suite loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from canary.doctor._check import Check, failure
from canary.errors import CanaryError

if TYPE_CHECKING:
    from canary.config.fleet import FleetConfig
    from canary.daemon.config import DaemonConfig, ScheduleConfig
    from canary.store import Store

_FILE_FIX = "check the path, and the key the message names"


@dataclass
class LoadedConfig:
    """What the config checks could load, for the checks that need it."""

    checks: list[Check] = field(default_factory=list)
    daemon: DaemonConfig | None = None
    daemon_path: Path | None = None
    fleet: FleetConfig | None = None
    fleet_path: Path | None = None
    """The fleet file read (relative paths inside it are relative to it)."""
    database_url: str | None = None
    """The database named in the daemon config, else in the fleet config."""


def check_config(config: Path | None, fleet: Path | None) -> LoadedConfig:
    """Load the daemon config (and the fleet it names) or the fleet file alone."""
    from canary.config import load_fleet
    from canary.daemon.config import load_daemon_config

    loaded = LoadedConfig()
    if config is None and fleet is None:
        loaded.checks.append(
            Check(
                "config",
                "warn",
                "no --config or --fleet given: endpoints, schedules and sinks were not checked",
                "pass --config daemon.yaml (or --fleet fleet.yaml)",
            )
        )
        return loaded
    if config is not None:
        try:
            daemon, base_dir = load_daemon_config(config)
        except CanaryError as exc:
            loaded.checks.append(failure("daemon config", exc, "config", _FILE_FIX))
            return loaded
        loaded.daemon, loaded.daemon_path = daemon, config
        loaded.checks.append(Check("daemon config", "ok", _describe_daemon(config, daemon)))
        if daemon.sim:
            loaded.checks.append(
                Check("fleet config", "ok", "sim: true: the simulated fleet starts in the daemon")
            )
        elif daemon.fleet is not None:
            fleet = base_dir / daemon.fleet
    if fleet is not None:
        try:
            loaded.fleet = load_fleet(fleet)
            loaded.fleet_path = fleet
        except CanaryError as exc:
            loaded.checks.append(failure("fleet config", exc, "config", _FILE_FIX))
        else:
            count = len(loaded.fleet.endpoints)
            loaded.checks.append(Check("fleet config", "ok", f"{fleet}: {count} endpoint(s)"))
    if loaded.daemon is not None:
        loaded.checks.extend(
            _check_schedule(s, loaded.fleet, loaded.daemon.sim) for s in loaded.daemon.schedules
        )
    daemon_url = loaded.daemon.database_url if loaded.daemon else None
    loaded.database_url = daemon_url or (loaded.fleet.database_url if loaded.fleet else None)
    return loaded


def check_baseline(store: Store, name: str) -> Check:
    """The daemon's `alerts.baseline` is stored (the daemon refuses to start without it)."""
    from canary.compare.baselines import load_baseline

    try:
        baseline = load_baseline(store, name)
    except CanaryError as exc:
        return failure(f"baseline {name}", exc, "config")
    cohorts = len(baseline.aggregate.cohorts)
    detail = f"stored {baseline.created_at:%Y-%m-%d %H:%M}, {cohorts} cohort(s)"
    return Check(f"baseline {name}", "ok", detail)


def _describe_daemon(path: Path, daemon: DaemonConfig) -> str:
    alerts = f"alerts against {daemon.alerts.baseline!r}" if daemon.alerts else "no alerts"
    return f"{path}: {len(daemon.schedules)} schedule(s), {len(daemon.sinks)} sink(s), {alerts}"


def _check_schedule(schedule: ScheduleConfig, fleet: FleetConfig | None, sim: bool) -> Check:
    """The suite loads, the timetable is valid and, with a fleet, the selection matches."""
    from canary.config.selection import select_endpoints
    from canary.daemon.timing import build_trigger
    from canary.probes import load_suite

    name = f"schedule {schedule.name}"
    try:
        build_trigger(schedule)
        suite = load_suite(schedule.suite)
        targets = (
            f"{len(select_endpoints(fleet, schedule.endpoints, schedule.select))} endpoint(s)"
            if fleet is not None
            else ("the simulated fleet" if sim else "an unchecked fleet")
        )
    except CanaryError as exc:
        return failure(name, exc, "config", f"fix schedule {schedule.name!r} in the daemon config")
    when = f"every {schedule.every}" if schedule.every else f"cron {schedule.cron!r}"
    detail = f"suite {suite.name} v{suite.version} ({len(suite.probes)} probes) → {targets}, {when}"
    return Check(name, "ok", detail)
