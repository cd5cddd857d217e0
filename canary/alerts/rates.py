"""The rates a monitor's CUSUMs weigh: what the open episodes explain, what "still bad" means,
and the rate before a rollback (see `canary.alerts.lifecycle`)."""

from __future__ import annotations

from collections.abc import Sequence

from canary.alerts.monitor_state import Episode, MonitorState


def still_bad_rate(p0: float, margin: float, k: int, n: int) -> float:
    """The rate the recovery test weighs against the baseline: half the rate seen from the
    onset to the alarm (the estimate is biased high, having been selected for crossing the
    threshold; the half absorbs that), never below baseline + margin. Resolving needs
    evidence that the rate is nearer the baseline than that: a fault still running at its
    rate cannot resolve, so the alert does not flap."""
    floor = p0 + margin
    if n == 0:
        return floor
    return min(max(floor, k / n / 2), 0.999)


def bad_rate(p0: float, margin: float, episodes: Sequence[Episode]) -> float:
    """What "not back at the baseline" means with several episodes open: the baseline plus
    half the smallest increase (at least the margin)."""
    smallest = min(e.increment for e in episodes)
    return min(p0 + max(margin, smallest / 2), 0.999)


def explained_rate(state: MonitorState, p0: float, margin: float) -> float:
    """The rate the open episodes explain: the baseline plus each episode's increase; with one
    episode, the rate it has counted (biased high, having crossed the threshold: that makes
    an escalation harder to open, never easier), at least baseline + margin."""
    if state.episodes:
        return p0 + sum(e.increment for e in state.episodes)
    seen = state.alert_k / state.alert_n if state.alert_n else 0.0
    return max(p0 + margin, seen)


def current_rate(state: MonitorState, p0: float, margin: float) -> float:
    """The rate before a rollback: what the newest episode has counted since it opened (the
    rate with every open fault on), else the explained rate."""
    if state.episodes and state.episodes[-1].n:
        newest = state.episodes[-1]
        return newest.k / newest.n
    return explained_rate(state, p0, margin)
