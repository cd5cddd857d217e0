"""The sequential deploy gate: look after every round, stop as soon as every metric is decided.

Each cohort × metric carries two anytime-valid tests (`canary.stats.anytime`):

- *regression*: an e-process against "after is no worse than before"; across the whole family
  of cohorts × metrics, e-BH at α picks the regressions (FDR ≤ α under any dependence), and a
  pick counts only when the observed effect also exceeds the margin (smaller is honest noise);
- *pass*: an e-process against "after is worse by at least the margin"; reaching 1/α passes the
  metric. The gate passes only when every critical metric passed, an intersection–union test,
  so P(pass while some metric is a margin-sized regression) ≤ α with no multiplicity charge.

A decided metric is frozen (its e-processes stopped there, which keeps them valid). The design is
chosen at a metric's first look and kept: *paired* (matched per-probe differences) when the
pairing exists for at least half the budget, else *unpaired* (the before side as a fixed
sample), and the verdict names it. The gate stops on the first regression, when every
critical metric is decided, or at the budget. Non-critical metrics are tested at every look
until then and a regression of one fails the gate, but the gate does not wait for them: what
they have not decided by the stop is reported as inconclusive and does not hold the deploy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from canary.stats import GateStatus, MetricPolicy
from canary.stats.anytime import Sample, e_bh, paired_log_e, to_e, two_sample_log_e

Key = tuple[str, str]
"""(cohort, metric)."""
Design = Literal["paired", "unpaired"]
SeqVerdict = Literal["pass", "regression", "inconclusive"]
Stop = Literal["decided", "regression", "budget", "exhausted", "undecidable"]
"""Why the gate stopped; ``undecidable``: a critical metric has no data on the before side, which
does not grow, so no budget can decide it."""


@dataclass(frozen=True)
class MetricEvidence:
    """What one cohort × metric has so far, on the unit interval (rates: 0/1; binned metrics:
    rescaled by their bins, ``scale`` metric units per unit)."""

    policy: MetricPolicy
    before: Sample
    after: Sample
    pairs: Sample | None = None
    """Matched after − before differences D as (D + 1) / 2, when the same probes ran."""
    scale: float = 1.0


@dataclass(frozen=True)
class SequentialVerdict:
    """One cohort × metric at the last look."""

    cohort: str
    metric: str
    verdict: SeqVerdict
    critical: bool
    method: str
    """The test used: ``paired-betting-eprocess`` or ``unpaired-betting-eprocess``."""
    e_regression: float
    e_pass: float
    effect: float
    """Observed change, positive = worse, in metric units."""
    margin: float
    n_before: int
    n_after: int
    n_pairs: int
    decided_at: int | None = None
    """Probes per cohort when it was decided."""

    def to_dict(self) -> dict[str, Any]:
        def fin(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "cohort": self.cohort,
            "metric": self.metric,
            "verdict": self.verdict,
            "critical": self.critical,
            "method": self.method,
            "e_regression": fin(self.e_regression),
            "e_pass": fin(self.e_pass),
            "effect": fin(self.effect),
            "margin": self.margin,
            "n_before": self.n_before,
            "n_after": self.n_after,
            "n_pairs": self.n_pairs,
            "decided_at": self.decided_at,
        }


@dataclass(frozen=True)
class GateDecision:
    """The gate when it stopped."""

    status: GateStatus
    stop: Stop
    probes: int
    """After-side probes per cohort (the largest cohort) when it stopped."""
    rounds: int
    seconds: float
    verdicts: list[SequentialVerdict] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        from canary.stats import EXIT_CODES

        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "stop": self.stop,
            "probes": self.probes,
            "rounds": self.rounds,
            "seconds": round(self.seconds, 3),
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def _oriented(sample: Sample, flip: bool) -> Sample:
    return Sample(1.0 - sample.values, sample.counts) if flip else sample


def _tests(ev: MetricEvidence, design: Design, m: float) -> tuple[float, float, float]:
    """(log e regression, log e pass, effect in units) for the policy's direction."""
    flips = {"higher_is_worse": [False], "lower_is_worse": [True], "two_sided": [False, True]}
    regs, passes, effects = [], [], []
    for flip in flips[ev.policy.direction]:
        if design == "paired" and ev.pairs is not None:
            d = _oriented(ev.pairs, flip)
            regs.append(paired_log_e(d, 0.0, "below"))
            passes.append(paired_log_e(d, m, "above"))
            effects.append(2 * d.mean - 1 if d.n else math.nan)
        else:
            b, a = _oriented(ev.before, flip), _oriented(ev.after, flip)
            regs.append(two_sample_log_e(b, a, 0.0, "below"))
            passes.append(two_sample_log_e(b, a, m, "above"))
            effects.append(a.mean - b.mean if a.n and b.n else math.nan)
    # Two-sided: the average of the two regression e-values is an e-value; a pass needs both.
    reg = math.log(sum(to_e(r) for r in regs) / len(regs)) if regs else 0.0
    best = max(range(len(effects)), key=lambda i: effects[i] if math.isfinite(effects[i]) else -1)
    return reg, min(passes), effects[best]


@dataclass
class SequentialGate:
    """The gate's state between looks; `look` feeds it the cumulative evidence of every metric."""

    policies: Mapping[str, MetricPolicy]
    alpha: float = 0.05
    budget: int | None = None
    """After-side probes per cohort the gate may spend: pairing is used only where the before
    side can pair at least half of them (a paired test stops growing when its pairs run out)."""
    designs: dict[Key, Design] = field(default_factory=dict)
    frozen: dict[Key, SequentialVerdict] = field(default_factory=dict)
    latest: dict[Key, SequentialVerdict] = field(default_factory=dict)

    def look(self, evidence: Mapping[Key, MetricEvidence], probes: int) -> list[SequentialVerdict]:
        """Update every undecided metric with its cumulative evidence and decide what can be."""
        fresh: dict[Key, SequentialVerdict] = {}
        log_reg: dict[Key, float] = {}
        for key, ev in evidence.items():
            if key in self.frozen:
                continue
            design = self.designs.setdefault(key, self._design(ev))
            before_value = ev.before.mean * ev.scale if ev.before.n else math.nan
            margin = ev.policy.margin_at(before_value)
            lr, lp, effect = _tests(ev, design, margin / ev.scale)
            log_reg[key] = lr
            fresh[key] = SequentialVerdict(
                cohort=key[0],
                metric=key[1],
                verdict="pass" if lp >= math.log(1 / self.alpha) else "inconclusive",
                critical=ev.policy.critical,
                method=f"{design}-betting-eprocess",
                e_regression=to_e(lr),
                e_pass=to_e(lp),
                effect=effect * ev.scale,
                margin=margin,
                n_before=int(ev.before.n),
                n_after=int(ev.after.n),
                n_pairs=int(ev.pairs.n) if ev.pairs is not None else 0,
            )
        keys = sorted(set(self.latest) | set(fresh))
        current = {k: fresh.get(k, self.latest.get(k)) for k in keys}
        e_values = [v.e_regression for v in current.values() if v is not None]
        picked = dict(zip(current, e_bh(e_values, self.alpha), strict=True))
        for key, v in current.items():
            if v is None or key in self.frozen:
                continue
            if picked[key] and v.effect > v.margin:
                v = _with(v, "regression", probes)
            elif v.verdict == "pass":
                v = _with(v, "pass", probes)
            if v.verdict != "inconclusive":
                self.frozen[key] = v
            current[key] = v
        self.latest = {k: v for k, v in current.items() if v is not None}
        return list(self.latest.values())

    def _design(self, ev: MetricEvidence) -> Design:
        """Chosen from counts only (never outcomes), at a metric's first look, then kept."""
        if ev.pairs is None or ev.pairs.n == 0:
            return "unpaired"
        if self.budget is not None and ev.before.n < self.budget / 2:
            return "unpaired"
        return "paired"

    def status(self) -> GateStatus:
        verdicts = self.latest.values()
        if any(v.verdict == "regression" for v in verdicts):
            return "regression"
        if not verdicts or any(v.critical and v.verdict != "pass" for v in verdicts):
            return "inconclusive"
        return "pass"

    def done(self) -> bool:
        """A regression anywhere, or every critical metric decided (every metric, when none is
        critical): the gate's status cannot change by waiting for a non-critical metric. Also
        when a critical metric has no before data: waiting cannot decide it."""
        verdicts = list(self.latest.values())
        deciding = [v for v in verdicts if v.critical] or verdicts
        return bool(verdicts) and (
            all(v.verdict != "inconclusive" for v in deciding)
            or any(v.verdict == "regression" for v in verdicts)
            or self._undecidable()
        )

    def stop_reason(self) -> Stop:
        """Why a `done` gate stopped."""
        if self.status() == "regression":
            return "regression"
        return "undecidable" if self._undecidable() else "decided"

    def _undecidable(self) -> bool:
        return any(v.critical and v.n_before == 0 for v in self.latest.values())


def _with(v: SequentialVerdict, verdict: SeqVerdict, probes: int) -> SequentialVerdict:
    from dataclasses import replace

    return replace(v, verdict=verdict, decided_at=v.decided_at or probes)


RoundFn = Callable[[], "tuple[Mapping[Key, MetricEvidence], int] | None"]
"""Runs one more round and returns the cumulative evidence and after-probes per cohort so far,
or None when nothing more can be run."""


def run_sequential_gate(
    next_round: RoundFn,
    policies: Mapping[str, MetricPolicy],
    *,
    alpha: float = 0.05,
    max_probes: int = 4000,
    max_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> GateDecision:
    """Run rounds until every metric is decided, a regression is found, or the budget ends."""
    gate = SequentialGate(policies, alpha, budget=max_probes)
    start = clock()
    rounds = probes = 0
    stop: Stop = "budget"
    while True:
        got = next_round()
        if got is None:
            stop = "exhausted"
            break
        evidence, probes = got
        rounds += 1
        gate.look(evidence, probes)
        if gate.done():
            stop = gate.stop_reason()
            break
        if probes >= max_probes or (max_seconds is not None and clock() - start >= max_seconds):
            break
    return GateDecision(
        status=gate.status(),
        stop=stop,
        probes=probes,
        rounds=rounds,
        seconds=clock() - start,
        verdicts=sorted(gate.latest.values(), key=lambda v: (v.cohort, v.metric)),
    )
