"""Schedule timetables: APScheduler triggers, and the nominal slot every daemon agrees on.

Two daemons must name a scheduled run identically to avoid running it twice, so a slot is its
nominal fire time: interval schedules are aligned to a fixed epoch (not to each daemon's start),
and the jitter APScheduler adds (always a delay, never early) is removed again by flooring the
fire time back onto the timetable. That is exact while jitter plus scheduling lateness stay
under one period, which is why jitter is limited to half of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from canary.daemon.config import ScheduleConfig
from canary.errors import ConfigError
from canary.timespec import parse_duration

#: Interval slots are multiples of the period since this instant.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def period_of(schedule: ScheduleConfig) -> timedelta:
    """The schedule's period (for cron, the gap between the next two fire times)."""
    if schedule.every is not None:
        return parse_duration(schedule.every)
    trigger = _cron(schedule)
    now = datetime.now(UTC)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(microseconds=1))
    if first is None or second is None:
        raise ConfigError(f"schedule {schedule.name!r}: cron {schedule.cron!r} never fires")
    return second - first


def build_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    """The APScheduler trigger, with the schedule's jitter (checked against the period)."""
    jitter = parse_duration(schedule.jitter).total_seconds()
    period = period_of(schedule)
    if jitter * 2 >= period.total_seconds():
        raise ConfigError(
            f"schedule {schedule.name!r}: jitter {schedule.jitter} must be under half the period"
            f" ({period.total_seconds():g}s)"
        )
    if schedule.every is not None:
        return IntervalTrigger(
            seconds=period.total_seconds(),
            start_date=EPOCH,
            timezone=UTC,
            jitter=int(jitter) or None,
        )
    return _cron(schedule, jitter=int(jitter) or None)


def nominal_slot(schedule: ScheduleConfig, now: datetime) -> datetime:
    """The latest fire time of the timetable at or before ``now``, jitter removed."""
    if schedule.every is not None:
        period = parse_duration(schedule.every)
        steps = (now - EPOCH) // period
        return EPOCH + steps * period
    trigger = _cron(schedule)
    lookback = timedelta(minutes=2)
    while lookback < timedelta(days=400):
        fire = trigger.get_next_fire_time(None, now - lookback)
        last = None
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        if last is not None:
            return last
        lookback *= 4
    raise ConfigError(f"schedule {schedule.name!r}: cron {schedule.cron!r} never fired")


def slots_between(schedule: ScheduleConfig, since: datetime, until: datetime) -> list[datetime]:
    """Nominal slot times in (since, until], oldest first (at most 10 000)."""
    out: list[datetime] = []
    if schedule.every is not None:
        period = parse_duration(schedule.every)
        slot = nominal_slot(schedule, since) + period
        while slot <= until and len(out) < 10_000:
            out.append(slot)
            slot += period
        return out
    trigger = _cron(schedule)
    tick = timedelta(microseconds=1)
    fire = trigger.get_next_fire_time(None, since + tick)
    while fire is not None and fire <= until and len(out) < 10_000:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + tick)
    return out


def rounds_per_year(schedule: ScheduleConfig) -> float:
    return timedelta(days=365).total_seconds() / period_of(schedule).total_seconds()


def _cron(schedule: ScheduleConfig, jitter: int | None = None) -> CronTrigger:
    try:
        trigger = CronTrigger.from_crontab(schedule.cron or "", timezone=UTC)
    except ValueError as exc:
        raise ConfigError(
            f"schedule {schedule.name!r}: cron {schedule.cron!r} is not valid ({exc}); "
            "use five fields, e.g. '*/10 * * * *'"
        ) from None
    trigger.jitter = jitter
    return trigger
