"""Slot times every daemon agrees on, whatever its start time or jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from canary.daemon.config import ScheduleConfig
from canary.daemon.timing import build_trigger, nominal_slot, period_of, slots_between
from canary.errors import ConfigError

NOW = datetime(2026, 11, 24, 10, 37, 12, tzinfo=UTC)


def schedule(**kw: object) -> ScheduleConfig:
    return ScheduleConfig.model_validate({"name": "s", "suite": "smoke", **kw})


def test_interval_slots_are_aligned_to_the_epoch_not_the_daemon_start() -> None:
    s = schedule(every="7m", jitter="2m")
    trigger = build_trigger(s)
    fires = {trigger.get_next_fire_time(None, NOW + timedelta(seconds=d)) for d in (0, 1, 30)}
    nominal = {nominal_slot(s, f) for f in fires if f is not None}
    assert len(nominal) == 1, "jittered fire times of one slot map back to one slot"
    (slot,) = nominal
    assert slot > NOW and (slot - datetime(2000, 1, 1, tzinfo=UTC)) % timedelta(
        minutes=7
    ) == timedelta(0)


def test_cron_slots_and_periods() -> None:
    s = schedule(cron="*/10 * * * *", jitter="30s")
    assert nominal_slot(s, NOW) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert nominal_slot(s, NOW.replace(minute=40, second=29)) == NOW.replace(minute=40, second=0)
    assert period_of(s) == timedelta(minutes=10)
    assert slots_between(s, NOW - timedelta(minutes=30), NOW) == [
        datetime(2026, 11, 24, 10, m, tzinfo=UTC) for m in (10, 20, 30)
    ]


def test_bad_timetables_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"jitter .* under half the period"):
        build_trigger(schedule(every="1m", jitter="40s"))
    with pytest.raises(ConfigError, match="not valid"):
        nominal_slot(schedule(cron="every tuesday"), NOW)
    with pytest.raises(ValueError, match="exactly one of 'every' or 'cron'"):
        schedule(every="1m", cron="* * * * *")
