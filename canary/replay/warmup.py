"""Healthy rounds → a baseline → an alerting daemon: how the replay, the demo and the soak
benchmark all start, written once.

Monitors need a baseline to judge against, and a baseline needs healthy results; so a probe-only
daemon first runs the given slots, everything stored so far becomes the baseline, and the daemon
that alerts is built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from canary.config.fleet import FleetConfig
from canary.store import Store

if TYPE_CHECKING:
    from canary.daemon.outcome import SlotOutcome
    from canary.daemon.service import Daemon

__all__ = ["baseline_then_alerting"]


def baseline_then_alerting(
    store: Store,
    fleet: FleetConfig,
    slots: Sequence[datetime],
    *,
    healthy: Mapping[str, Any],
    alerting: Mapping[str, Any],
    baseline: str,
    note: str,
    owner: str | None = None,
    on_healthy_tick: Callable[[int, list[SlotOutcome]], None] | None = None,
    on_slot: Callable[[SlotOutcome], None] | None = None,
) -> Daemon:
    """Tick a daemon built from ``healthy`` (a daemon config) once at each of ``slots``, capture
    baseline ``baseline`` from every stored result, and return the daemon built from
    ``alerting`` with its monitors set to that baseline.

    The baseline replaces one of the same name, so a database can be replayed into again.
    ``on_healthy_tick`` sees each healthy tick's index and outcomes (for progress);
    ``on_slot`` is the alerting daemon's slot callback.
    """
    from canary.compare.baselines import capture_baseline
    from canary.daemon.config import DaemonConfig
    from canary.daemon.service import Daemon
    from canary.records import ResultFilter

    probe_only = Daemon(DaemonConfig.model_validate(dict(healthy)), fleet, store, owner=owner)
    for i, slot_at in enumerate(slots):
        outcomes = probe_only.tick(slot_at)
        if on_healthy_tick is not None:
            on_healthy_tick(i, outcomes)
    capture_baseline(store, baseline, ResultFilter(), ("endpoint", "load"), note=note, replace=True)
    config = {**alerting, "alerts": {**alerting.get("alerts", {}), "baseline": baseline}}
    return Daemon(DaemonConfig.model_validate(config), fleet, store, owner=owner, on_slot=on_slot)
