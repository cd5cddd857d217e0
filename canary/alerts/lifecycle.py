"""The alert lifecycle of one monitor as a pure function: state and a round's counts in, the
next state and the actions it calls for out. No database: the engine applies the actions in
its one write transaction.

Hysteresis on both edges, so an alert does not flap:

- ok → pending: the evidence reached half the firing threshold (shown, never paged).
- pending → ok: the evidence fell back below a quarter of it (the pending alert is closed).
- ok/pending → firing: the evidence reached the threshold (the alert records its onset,
  attribution, evidence and impact: the engine gathers those for `Fire`).
- firing → resolved: a separate recovery statistic, the CUSUM of "rate is back at baseline"
  against "rate is half what was seen from the onset to the alarm" (at least baseline +
  margin), reached ``resolve_nats`` (default half the firing threshold) after at least
  ``resolve_min_rounds`` rounds. Clean rounds are needed, not merely the absence of an alarm.
  The CUSUM itself is frozen while firing, and starts afresh after resolving.

No masking: a recorded change touching the cohort while it fires (`ChangeEvent`) starts a
`Watch`, a CUSUM of "the rate is what the open episodes explain" against "that plus the margin"
(the same threshold, so the same ARL to a false escalation, by Lorden's bound, whenever the
rate after the change is at most the explained rate). Its alarm opens an escalation
(`Escalate`): an episode of its own, attributed to that change. While several episodes are
open, each one whose change has been rolled back (a change recorded as its rollback) has its
own recovery CUSUM, "the rate is what the other episodes explain" against "still that plus
half its own increase"; it resolves that episode alone (`ResolveEpisode`). Evidence that the
rate is back at the baseline resolves them all. With one episode left, the monitor is back to
the one-alert lifecycle above, on that episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from canary.alerts.monitor_state import (
    ChangeEvent,
    Episode,
    MonitorState,
    MonitorStatus,
    OpenAlert,
    Recovery,
    Rules,
    Watch,
)
from canary.alerts.rates import bad_rate, current_rate, explained_rate, still_bad_rate
from canary.alerts.transitions import (
    Action,
    Clear,
    Escalate,
    Fire,
    Pending,
    Resolve,
    ResolveEpisode,
    TallyEpisode,
    Transition,
    UpdateEvidence,
)
from canary.stats.cusum import CusumRateDetector, recovery_log_lr


def step(
    state: MonitorState,
    k: int,
    n: int,
    at: datetime,
    rules: Rules,
    changes: Sequence[ChangeEvent] = (),
) -> tuple[MonitorState, list[Action]]:
    """One round, ``k`` flagged of ``n`` sessions taken at ``at``, after ``changes`` touching
    the cohort: the next state and the actions on the monitor's alerts, in the order they
    apply. Changes matter only while firing (a firing alert must not mask a second fault)."""
    detector = CusumRateDetector.from_dict(state.detector)
    if state.status == "firing":
        state = _note_changes(state, detector, changes, rules)
        new, actions = _while_firing(state, detector, k, n, at, rules)
    else:
        new, actions = _while_watching(state, detector, k, n, at, rules)
    return replace(new, detector=detector.to_dict(), last_k=k, last_n=n), actions


def _while_watching(
    state: MonitorState,
    detector: CusumRateDetector,
    k: int,
    n: int,
    at: datetime,
    rules: Rules,
) -> tuple[MonitorState, list[Action]]:
    result = detector.update(k, n, at)
    state = replace(state, score=result.score)
    opened: list[Action] = []
    if (result.alarm or result.pending) and state.alert_id is None:
        opened.append(
            OpenAlert(
                result.onset, detector.p0, rules.margin, result.k_seg, result.n_seg, result.score
            )
        )
    if result.alarm:
        fire = Fire(
            before=state.status,
            onset=result.onset,
            baseline_rate=detector.p0,
            margin=detector.margin,
            k=result.k_seg,
            n=result.n_seg,
            score=result.score,
            threshold=detector.threshold,
            alternative=result.alternative,
            rounds=result.rounds,
        )
        firing = replace(
            state,
            status="firing",
            recovery=Recovery(),
            alert_k=result.k_seg,
            alert_n=result.n_seg,
        )
        return firing, [*opened, fire]
    if result.pending:
        pending = replace(state, status="pending", alert_k=result.k_seg, alert_n=result.n_seg)
        return pending, [*opened, Pending(result.k_seg, result.n_seg, result.score)]
    if state.status == "pending" and result.score < detector.threshold / 4:
        cleared = replace(state, status="ok", alert_id=None, alert_k=0, alert_n=0, evidence=0)
        return cleared, [Clear()] if state.alert_id is not None else []
    return state, []


def _while_firing(
    state: MonitorState,
    detector: CusumRateDetector,
    k: int,
    n: int,
    at: datetime,
    rules: Rules,
) -> tuple[MonitorState, list[Action]]:
    wanted = rules.evidence_limit - state.evidence if k else 0
    actions: list[Action] = [UpdateEvidence(k, n, max(wanted, 0))]
    state = replace(state, alert_k=state.alert_k + k, alert_n=state.alert_n + n)
    if state.episodes:
        counted = tuple(replace(e, k=e.k + k, n=e.n + n) for e in state.episodes)
        state = replace(state, episodes=counted)
        actions += [TallyEpisode(e.alert_id, e.k, e.n) for e in counted[1:] if e.alert_id]
    state, escalated = _watch_round(state, detector, k, n, at)
    if escalated is not None:
        return state, [*actions, escalated]
    if state.episodes:
        return _recover_episodes(state, detector, k, n, rules, actions)
    return _recover(state, detector, k, n, rules, actions)


def _recover(
    state: MonitorState,
    detector: CusumRateDetector,
    k: int,
    n: int,
    rules: Rules,
    actions: list[Action],
) -> tuple[MonitorState, list[Action]]:
    """One episode: the recovery CUSUM of "back at the baseline" against "still bad"."""
    recovery = state.recovery or Recovery()
    # Fixed at the first round after the alarm: the rate that fired it. Re-estimating it
    # from clean rounds would weaken each clean round's evidence the longer recovery runs.
    n_fired, k_fired = state.alert_n - n, state.alert_k - k
    p_bad = float(recovery.p_bad or still_bad_rate(detector.p0, detector.margin, k_fired, n_fired))
    llr = recovery_log_lr(k, n, detector.p0, p_bad)
    recovery = Recovery(max(0.0, recovery.nats + llr), recovery.rounds + 1, p_bad)
    state = replace(state, recovery=recovery)
    if _recovered(recovery, detector, rules):
        actions.append(Resolve(recovery.nats, recovery.rounds))
        return _resolved(state, detector), actions
    return state, actions


def _recover_episodes(
    state: MonitorState,
    detector: CusumRateDetector,
    k: int,
    n: int,
    rules: Rules,
    actions: list[Action],
) -> tuple[MonitorState, list[Action]]:
    """Several episodes: all resolve when the rate is back at the baseline; a rolled-back one
    resolves alone when the rate is back at what the others explain."""
    p0 = detector.p0
    full = state.recovery or Recovery()
    p_bad = full.p_bad or bad_rate(p0, detector.margin, state.episodes)
    full = Recovery(max(0.0, full.nats + recovery_log_lr(k, n, p0, p_bad)), full.rounds + 1, p_bad)
    if _recovered(full, detector, rules):
        for e in state.episodes[1:]:
            assert e.alert_id is not None
            actions.append(ResolveEpisode(e.alert_id, full.nats, full.rounds, "baseline"))
        actions.append(Resolve(full.nats, full.rounds))
        return _resolved(state, detector), actions
    kept: list[Episode] = []
    gone: list[Episode] = []
    for e in state.episodes:
        if not e.rolled_back:
            kept.append(e)
            continue
        floor = p0 + sum(f.increment for f in state.episodes if f is not e)
        bad = min(floor + max(detector.margin, e.increment / 2), 0.999)
        floor = min(floor, bad - 1e-6)
        r = e.recovery
        r = Recovery(max(0.0, r.nats + recovery_log_lr(k, n, floor, bad)), r.rounds + 1, bad)
        e = replace(e, since_k=e.since_k + k, since_n=e.since_n + n)
        if _recovered(r, detector, rules) or _dropped(e, r, detector, rules):
            assert e.alert_id is not None
            actions.append(ResolveEpisode(e.alert_id, r.nats, r.rounds, "rolled back"))
            gone.append(e)
        else:
            kept.append(replace(e, recovery=r))
    if not gone:
        return replace(state, recovery=full, episodes=tuple(kept)), actions
    if not kept:  # every episode rolled back and recovered at once: the monitor resolves
        return _resolved(state, detector), actions
    return _regroup(state, detector, tuple(kept)), actions


def _regroup(
    state: MonitorState, detector: CusumRateDetector, kept: tuple[Episode, ...]
) -> MonitorState:
    """The episodes left after some resolved: the first becomes the monitor's alert; the
    recovery tests start afresh, their hypotheses having changed."""
    first = kept[0]
    if len(kept) == 1:
        p_bad = min(max(detector.p0 + detector.margin, (detector.p0 + first.increment) / 2), 0.999)
        return replace(
            state,
            alert_id=first.alert_id,
            alert_change=first.change_id,
            alert_k=first.k,
            alert_n=first.n,
            evidence=0 if first.alert_id != state.alert_id else state.evidence,
            recovery=Recovery(p_bad=p_bad),
            episodes=(),
        )
    fresh = tuple(replace(e, recovery=Recovery()) for e in kept)
    return replace(
        state,
        alert_id=first.alert_id,
        alert_change=first.change_id,
        recovery=Recovery(p_bad=bad_rate(detector.p0, detector.margin, fresh)),
        episodes=fresh,
    )


def _dropped(e: Episode, r: Recovery, detector: CusumRateDetector, rules: Rules) -> bool:
    """A rolled-back episode whose fault overlaps another's: the rate since the rollback is
    below what was explained before it (by half the margin), over the minimum rounds.

    Faults on one cohort need not add up: misrouted sessions escape a pool's top-k fault, so
    rolling the top-k fault back may lower the rate by far less than its episode's increase,
    and the recovery CUSUM above (which assumes the increases add) would wait for a drop that
    never comes. The recorded rollback says which episode ended; the data only have to agree
    that the rate did not stay where it was. The other episodes keep the cohort firing, so a
    rollback that fixed nothing still leaves an alert open."""
    if e.before is None or e.since_n == 0 or r.rounds < rules.resolve_min_rounds:
        return False
    return e.since_k / e.since_n < e.before - detector.margin / 2


def _recovered(recovery: Recovery, detector: CusumRateDetector, rules: Rules) -> bool:
    resolve_at = rules.resolve_nats or detector.threshold / 2
    return recovery.nats >= resolve_at and recovery.rounds >= rules.resolve_min_rounds


def _resolved(state: MonitorState, detector: CusumRateDetector) -> MonitorState:
    detector.reset()
    return replace(
        state,
        status="ok",
        alert_id=None,
        score=0.0,
        recovery=None,
        alert_k=0,
        alert_n=0,
        evidence=0,
        alert_change=None,
        watch=None,
        episodes=(),
    )


def _note_changes(
    state: MonitorState,
    detector: CusumRateDetector,
    changes: Sequence[ChangeEvent],
    rules: Rules,
) -> MonitorState:
    """Rollbacks mark their episodes (and drop a watch on the change they undo); any other
    new change starts a watch, replacing an older one (the latest change is the candidate)."""
    for change in sorted(changes, key=lambda c: c.at):
        undone = change.rollback_of
        if undone is not None:
            if state.watch is not None and state.watch.change_id == undone:
                state = replace(state, watch=None)
            top = current_rate(state, detector.p0, rules.margin)
            marked = tuple(
                replace(e, rolled_back=True, before=top, since_k=0, since_n=0)
                if e.change_id == undone and not e.rolled_back
                else e
                for e in state.episodes
            )
            state = replace(state, episodes=marked)
            continue
        open_changes = {state.alert_change, *(e.change_id for e in state.episodes)}
        if change.change_id in open_changes:
            continue
        level = min(explained_rate(state, detector.p0, rules.margin), 0.999)
        if level + rules.margin >= 1:
            continue
        watch = CusumRateDetector(level, rules.margin, detector.threshold, detector.ratio)
        state = replace(state, watch=Watch(change.change_id, change.at, level, watch.to_dict()))
    return state


def _watch_round(
    state: MonitorState, detector: CusumRateDetector, k: int, n: int, at: datetime
) -> tuple[MonitorState, Escalate | None]:
    """Feed the watch; on its alarm, the change's episode opens (an escalation)."""
    if state.watch is None:
        return state, None
    watch = CusumRateDetector.from_dict(state.watch.detector)
    result = watch.update(k, n, at)
    if not result.alarm:
        return replace(state, watch=replace(state.watch, detector=watch.to_dict())), None
    level = state.watch.level
    rate = max(result.k_seg / result.n_seg if result.n_seg else 0.0, level + detector.margin)
    escalation = Escalate(
        parent=state.alert_id,
        change_id=state.watch.change_id,
        change_at=state.watch.at,
        onset=result.onset,
        level=level,
        baseline_rate=detector.p0,
        margin=detector.margin,
        k=result.k_seg,
        n=result.n_seg,
        score=result.score,
        threshold=watch.threshold,
        alternative=result.alternative,
        rounds=result.rounds,
    )
    episodes = state.episodes or (
        Episode(
            state.alert_id, state.alert_change, detector.p0, level, state.alert_k, state.alert_n
        ),
    )
    opened = Episode(None, state.watch.change_id, level, rate, result.k_seg, result.n_seg)
    # With one more episode, "back at the baseline" is a new hypothesis: its CUSUM restarts.
    both = (*episodes, opened)
    grown = replace(
        state,
        watch=None,
        episodes=both,
        recovery=Recovery(p_bad=bad_rate(detector.p0, detector.margin, both)),
    )
    return grown, escalation


__all__ = [
    "Action",
    "ChangeEvent",
    "Clear",
    "Episode",
    "Escalate",
    "Fire",
    "MonitorState",
    "MonitorStatus",
    "OpenAlert",
    "Pending",
    "Recovery",
    "Resolve",
    "ResolveEpisode",
    "Rules",
    "TallyEpisode",
    "Transition",
    "UpdateEvidence",
    "Watch",
    "explained_rate",
    "step",
    "still_bad_rate",
]
