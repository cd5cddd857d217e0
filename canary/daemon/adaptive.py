"""Adaptive probing: a slot's probe budget moves from quiet cohorts to pending ones.

A monitor that went pending has seen half the evidence it needs to fire; more sessions in its
next rounds confirm the fault (or clear it) in fewer rounds. Within one schedule's slot, each
endpoint × load (a "unit") is sent the suite ``repeat`` times; `allocate` raises the repeats of
pending units up to ``max_boost`` times their configured value, and pays for it with repeats of
quiet units (never below one, nor below ``1/max_boost`` of theirs), so the slot sends no more
requests than configured. Firing units keep theirs: their recovery test needs its usual data.
An endpoint's ``rate_limit_rps`` caps what one unit may be sent in a slot.

Why the false-alarm budget still holds. The thresholds bound false alarms per *round* (one
monitor update per run), and adaptive probing changes only how many sessions a round holds,
never how many rounds there are. Each round's size is fixed before the round is sent, from past
data only (it is predictable). Under "rate ≤ p0" each round's likelihood ratio then still has
conditional mean at most 1 given the past, whatever its size, so for every alternative the
Shiryaev–Roberts sum ``R_t`` of the CUSUM's likelihood ratios satisfies ``E[R_t − t] ≤ 0``
(a supermartingale) and, by optional stopping, the CUSUM (``max ≤ R_t``) needs ``E[T] ≥ e^h``
rounds to cross ``h``: Lorden's ARL bound, which `canary.stats.cusum.cusum_threshold` relies on
with a union over the alternatives, holds for data-dependent round sizes. The same argument
(the likelihood ratio is a test supermartingale; Ville's inequality) covers the recovery and
escalation CUSUMs and the gate's e-values (`canary.stats.sequential`), which are valid under
optional stopping and optional continuation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "pending", "firing"]

__all__ = ["Unit", "allocate", "repeat_cap", "unit_status"]


@dataclass(frozen=True)
class Unit:
    """One endpoint × load of a slot, as the allocation sees it."""

    endpoint: str
    load: str
    base: int
    """Repeats the schedule configures (``loads[].repeat``)."""
    cap: int
    """Most repeats the endpoint's limits allow in one slot (at least ``base``)."""
    status: Status = "ok"
    """The worst status of its monitors: pending outranks firing (it is the one to settle)."""


def allocate(units: Sequence[Unit], max_boost: float) -> dict[tuple[str, str], int]:
    """Repeats per (endpoint, load): pending units boosted, quiet units paying, the slot's
    total at most the configured one. Deterministic (ties go in the order given)."""
    out = {(u.endpoint, u.load): u.base for u in units}
    pending = [u for u in units if u.status == "pending"]
    quiet = [u for u in units if u.status == "ok"]
    if not pending or not quiet or max_boost <= 1:
        return out
    room = {
        (u.endpoint, u.load): max(min(math.floor(u.base * max_boost), u.cap) - u.base, 0)
        for u in pending
    }
    slack = {(u.endpoint, u.load): u.base - max(1, math.ceil(u.base / max_boost)) for u in quiet}
    moved = min(sum(room.values()), sum(slack.values()))
    # One repeat at a time: the most-starved pending unit gains, the richest quiet unit pays.
    for _ in range(moved):
        gain = max(
            pending,
            key=lambda u: (room[(u.endpoint, u.load)] > 0, -out[(u.endpoint, u.load)] / u.base),
        )
        pay = max(quiet, key=lambda u: (slack[(u.endpoint, u.load)], out[(u.endpoint, u.load)]))
        g, p = (gain.endpoint, gain.load), (pay.endpoint, pay.load)
        out[g] += 1
        room[g] -= 1
        out[p] -= 1
        slack[p] -= 1
    return out


def repeat_cap(
    base: int,
    suite_size: int,
    period_s: float,
    rate_limit_rps: float | None,
    *,
    headroom: float = 0.5,
) -> int:
    """The most repeats of a suite of ``suite_size`` probes an endpoint takes in one slot of
    ``period_s`` seconds: ``headroom`` of its rate limit over the period (unlimited: no cap
    beyond the boost), never below the configured ``base``."""
    if rate_limit_rps is None:
        return 1_000_000
    fits = math.floor(rate_limit_rps * period_s * headroom / max(suite_size, 1))
    return max(base, fits)


def unit_status(statuses: Sequence[Mapping[str, str]], endpoint: str, load: str) -> Status:
    """The allocation status of an endpoint × load from its monitors' ``{endpoint, load,
    status}``: pending if any monitor is pending, else firing if any fires, else ok."""
    mine = {
        s["status"] for s in statuses if s.get("endpoint") == endpoint and s.get("load") == load
    }
    if "pending" in mine:
        return "pending"
    return "firing" if "firing" in mine else "ok"
