"""Slots whose time passed while no daemon was up: counted, logged, and run when asked.

At start a daemon looks, per schedule, for slot times after the schedule's newest slot row and
up to now that no daemon claimed. The schedule's `catch_up` policy decides: `none` records them
as `missed`, `latest` runs the newest and records the rest, `all` runs those younger than
`recover_within`. Each schedule gets one log line (how many, which time range) and the
`canary_slots_total{status="missed"}` counter.

Running a slot late goes through the ordinary claim, so a live daemon firing it at the same
moment runs it once between them. Recording a slot as missed is not a claim: it would steal the
slot from a live daemon still inside its jitter, so those rows are written only once the newest
slot is past its fire window (jitter plus the scheduler's grace of half a period); until then
the schedule stays pending and a later housekeeping pass settles it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from canary.daemon.config import CatchUp, ScheduleConfig
from canary.daemon.timing import nominal_slot, period_of, slots_between
from canary.store.slots import newest_slot_time, record_missed_slots
from canary.timespec import parse_duration

if TYPE_CHECKING:
    from canary.daemon.metrics import DaemonMetrics
    from canary.store import Store

logger = logging.getLogger(__name__)

#: The reason stored on a slot row recorded as missed.
MISSED_REASON = "no daemon was up at its time"
#: At most this many of a schedule's newest unclaimed slots are accounted at one start.
MAX_SLOTS = 5000


@dataclass
class Downtime:
    """One schedule's slots that no daemon claimed, found when this daemon started."""

    schedule: ScheduleConfig
    policy: CatchUp
    slots: list[datetime] = field(default_factory=list)
    """Unclaimed slot times, oldest first."""

    def split(self, now: datetime, max_age: timedelta) -> tuple[list[datetime], list[datetime]]:
        """(slots to run late, slots to record as missed) under the schedule's policy."""
        if self.policy == "latest" and self.slots:
            return self.slots[-1:], self.slots[:-1]
        if self.policy == "all":
            young = [s for s in self.slots if s >= now - max_age]
            return young, [s for s in self.slots if s < now - max_age]
        return [], list(self.slots)


def fire_window(schedule: ScheduleConfig) -> timedelta:
    """How long after its time a live daemon may still fire a slot (jitter + grace)."""
    return parse_duration(schedule.jitter) + period_of(schedule) / 2


def unclaimed_since_last(store: Store, schedule: ScheduleConfig, now: datetime) -> list[datetime]:
    """Slot times after the schedule's newest row, up to now, with no row; empty when the
    schedule never ran (a new schedule has missed nothing)."""
    last = newest_slot_time(store, schedule.name)
    if last is None:
        return []
    # After a long outage only the newest slots are listed (slots_between stops at 10 000).
    since = max(last, now - MAX_SLOTS * period_of(schedule))
    return slots_between(schedule, since, nominal_slot(schedule, now))


def record_missed(
    store: Store, schedule: str, slots: list[datetime], owner: str, now: datetime
) -> int:
    """Write a `missed` row for each slot that still has none; returns how many this call wrote
    (another daemon recording the same slots at once gets 0 for those)."""
    return record_missed_slots(store, schedule, slots, owner, now, MISSED_REASON)


class CatchUpLedger:
    """The downtime of every schedule, found once at start and settled as policies allow."""

    def __init__(self, store: Store, owner: str, metrics: DaemonMetrics, max_age: timedelta):
        self.store = store
        self.owner = owner
        self.metrics = metrics
        self.max_age = max_age
        self.pending: dict[str, Downtime] = {}
        self._found = False
        self._lock = threading.Lock()  # the start job and housekeeping may settle at once

    def find(self, schedules: dict[str, tuple[ScheduleConfig, CatchUp]], now: datetime) -> None:
        """Look for each schedule's unclaimed slots (once: later calls do nothing)."""
        with self._lock:
            if self._found:
                return
            self._found = True
            for name, (schedule, policy) in schedules.items():
                slots = unclaimed_since_last(self.store, schedule, now)
                if slots:
                    self.pending[name] = Downtime(schedule, policy, slots)

    def settle(self, now: datetime, run_slot: Callable[[str, datetime], object]) -> int:
        """Run what the policies ask for and record the rest as missed, for every schedule
        whose newest slot is past its fire window; returns how many slots were run."""
        due: list[tuple[str, Downtime]] = []
        with self._lock:
            for name, downtime in list(self.pending.items()):
                if downtime.policy == "none" and now < downtime.slots[-1] + fire_window(
                    downtime.schedule
                ):
                    continue  # a live daemon may still fire the newest: decide later
                due.append((name, self.pending.pop(name)))
        ran = 0
        for name, downtime in due:
            to_run, to_mark = downtime.split(now, self.max_age)
            missed = record_missed(self.store, name, to_mark, self.owner, now)
            self.metrics.slot_finished(name, "missed", missed)
            first, last = downtime.slots[0].isoformat(), downtime.slots[-1].isoformat()
            logger.warning(
                "schedule %s: %d slot(s) from %s to %s passed while no daemon was up; "
                "catch_up %s: running %d, %d recorded as missed",
                name,
                len(downtime.slots),
                first,
                last,
                downtime.policy,
                len(to_run),
                missed,
            )
            for slot_at in to_run:
                run_slot(name, slot_at)
                ran += 1
        return ran
