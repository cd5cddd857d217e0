"""Change detection on a flag rate for a monitor that runs for months: Page's CUSUM.

Why CUSUM and not a sequential test. A sequential test (`SequentialRateMonitor`) accumulates
evidence from the start: after months of healthy rounds its likelihood ratio sits deep below 1,
and a regression must first climb out of that hole, so the detection delay grows with the age of
the monitor; its false-alarm guarantee — "at most α, ever, over infinite time" — also makes it
ever less sensitive. CUSUM keeps, for each alternative rate, ``C = max(0, C + llr(round))``: it
restarts at zero whenever the data look healthy, so the evidence always covers only the recent
suspicious stretch and a change is detected as fast after a year as on the first day. Its
false-alarm measure is the average run length (ARL): how many rounds pass, on average, between
false alarms while nothing is wrong — the natural unit for a monitor that never stops.

Threshold. By Lorden (1971) a CUSUM with likelihood-ratio increments and threshold ``h`` nats
has ARL ≥ e^h observations (rounds here, since a round's batch of flags is one observation). The
detector runs one CUSUM per alternative and alarms when any reaches ``h``; by a union bound over
``J`` alternatives, ``h = ln(J · ARL)`` keeps the ARL ≥ the target (`cusum_threshold`). Choose
the ARL from the false alerts the whole fleet may raise in a year (`arl_for_false_alarms`). The
bound holds for every true rate ≤ ``p0`` (a lower rate only shortens the excursions), and it is
conservative: measured run lengths are longer.

The grid. The post-change rate is unknown, so the alternatives are ``p0 + margin · ratio^j``
(at most eight, below 1) and the largest CUSUM wins. Against an oracle that knows the true rate
``p1`` (`oracle_detection_probes`, ``h / KL(p1 ‖ p0)`` probes), the grid costs ``ln J`` nats of
threshold plus the mismatch between ``p1`` and the nearest alternative (with ratio 2, about 10%
of the KL rate at worst, for increases above the margin); increases below the margin are the
indifference zone and are detected slowly or not at all.

``p0`` must be positive: with ``p0 = 0`` a single flag is infinite evidence. Pass an upper
confidence bound of the baseline rate (`baseline_upper_rate`).
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from canary.stats.sequential import bernoulli_kl

MAX_ALTERNATIVES = 8


@dataclass(frozen=True)
class CusumState:
    """The detector after an update: what the daemon shows and the alert lifecycle reads."""

    score: float
    """Largest CUSUM statistic over the alternatives, in nats."""
    threshold: float
    alarm: bool
    """``score ≥ threshold``: a regression (not latched; it clears when the evidence does)."""
    alternative: float
    """The alternative rate whose CUSUM is largest (the best guess of the new rate's size)."""
    onset: datetime | None
    """``at`` of the first round of that alternative's current positive run: the change point."""
    k_seg: int
    """Flags since the onset."""
    n_seg: int
    """Probes since the onset."""
    rate: float | None
    """``k_seg / n_seg``, the flag rate since the onset (None without probes)."""
    rounds: int
    """Rounds seen since the detector started or was reset."""
    pending: bool
    """``score ≥ threshold / 2``: half the evidence an alarm needs."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["onset"] = _iso(self.onset)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CusumState:
        d = dict(data)
        d["onset"] = _from_iso(d.get("onset"))
        return cls(**d)


@dataclass
class CusumRateDetector:
    """Page's CUSUM of "flag rate = p0" against a grid of higher rates, updated per round."""

    p0: float
    """Baseline flag rate (> 0): an upper confidence bound of the baseline's rate."""
    margin: float
    """Smallest increase worth detecting: the first alternative is ``p0 + margin``."""
    threshold: float
    """Alarm level in nats; `cusum_threshold` turns an ARL target into one."""
    ratio: float = 2.0
    """Spacing of the alternatives: ``p0 + margin · ratio^j``."""
    scores: list[float] = field(default_factory=list)
    """``C_j`` per alternative (empty: all zero)."""
    segment_starts: list[datetime | None] = field(default_factory=list)
    """Per alternative, ``at`` of the first round of the current positive run."""
    k_segs: list[int] = field(default_factory=list)
    n_segs: list[int] = field(default_factory=list)
    rounds: int = 0
    _steps: list[tuple[float, float]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        alts = cusum_alternatives(self.p0, self.margin, self.ratio)
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0 nats, got {self.threshold}")
        # llr of one round = k·up + (n − k)·down, precomputed per alternative
        self._steps = [(math.log(p / self.p0), math.log1p(-p) - math.log1p(-self.p0)) for p in alts]
        j = len(alts)
        self.scores = [float(c) for c in self.scores]  # own copies: from_dict's input stays put
        self.segment_starts = list(self.segment_starts)
        self.k_segs, self.n_segs = list(self.k_segs), list(self.n_segs)
        if not (self.scores or self.segment_starts or self.k_segs or self.n_segs):
            self._clear()
        elif not all(
            len(x) == j for x in (self.scores, self.segment_starts, self.k_segs, self.n_segs)
        ):
            raise ValueError(f"stored state must have one entry per alternative ({j})")

    @classmethod
    def for_arl(
        cls, p0: float, margin: float, arl_rounds: float, ratio: float = 2.0
    ) -> CusumRateDetector:
        """A detector whose ARL to false alarm is at least ``arl_rounds`` rounds."""
        j = len(cusum_alternatives(p0, margin, ratio))
        return cls(p0, margin, cusum_threshold(arl_rounds, j), ratio)

    @property
    def alternatives(self) -> tuple[float, ...]:
        return tuple(self.p0 + self.margin * self.ratio**j for j in range(len(self._steps)))

    def update(self, k: int, n: int, at: datetime) -> CusumState:
        """Add one round, ``k`` flagged of ``n`` probes, taken at ``at``; return the state."""
        k, n = operator.index(k), operator.index(n)
        if not 0 <= k <= n:
            raise ValueError(f"need 0 ≤ k ≤ n, got k={k}, n={n}")
        for j, (up, down) in enumerate(self._steps):
            prev = self.scores[j]
            c = prev + k * up + (n - k) * down
            if c <= 0:
                self.scores[j] = 0.0
                self.segment_starts[j] = None
                self.k_segs[j] = self.n_segs[j] = 0
                continue
            self.scores[j] = c
            if prev <= 0:
                self.segment_starts[j] = at
                self.k_segs[j], self.n_segs[j] = k, n
            else:
                self.k_segs[j] += k
                self.n_segs[j] += n
        self.rounds += 1
        return self.state

    @property
    def state(self) -> CusumState:
        j = max(range(len(self.scores)), key=self.scores.__getitem__)
        score, k, n = self.scores[j], self.k_segs[j], self.n_segs[j]
        return CusumState(
            score=score,
            threshold=self.threshold,
            alarm=score >= self.threshold,
            alternative=self.p0 + self.margin * self.ratio**j,
            onset=self.segment_starts[j],
            k_seg=k,
            n_seg=n,
            rate=k / n if n else None,
            rounds=self.rounds,
            pending=score >= self.threshold / 2,
        )

    def reset(self) -> None:
        """Forget all evidence (e.g. after a resolved incident or a new baseline)."""
        self._clear()
        self.rounds = 0

    def _clear(self) -> None:
        j = len(self._steps)
        self.scores = [0.0] * j
        self.segment_starts = [None] * j
        self.k_segs = [0] * j
        self.n_segs = [0] * j

    def to_dict(self) -> dict[str, Any]:
        """Config and state, JSON-safe, for the daemon's database."""
        return {
            "p0": self.p0,
            "margin": self.margin,
            "threshold": self.threshold,
            "ratio": self.ratio,
            "scores": list(self.scores),
            "segment_starts": [_iso(t) for t in self.segment_starts],
            "k_segs": list(self.k_segs),
            "n_segs": list(self.n_segs),
            "rounds": self.rounds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CusumRateDetector:
        d = dict(data)
        d["segment_starts"] = [_from_iso(t) for t in d.get("segment_starts", [])]
        return cls(**d)


def cusum_alternatives(p0: float, margin: float, ratio: float = 2.0) -> list[float]:
    """The grid ``p0 + margin · ratio^j`` below 1, at most `MAX_ALTERNATIVES` rates."""
    if not 0 <= p0 < 1:
        raise ValueError(f"p0 must be in (0, 1), got {p0}")
    if p0 == 0:
        raise ValueError(
            "p0 = 0 makes a single flag infinite evidence; pass an upper confidence bound of "
            "the baseline rate instead, e.g. baseline_upper_rate(k, n)"
        )
    if not margin > 0 or p0 + margin >= 1:
        raise ValueError(f"margin must be > 0 with p0 + margin < 1, got {margin} (p0={p0})")
    if not ratio > 1:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    alts: list[float] = []
    while len(alts) < MAX_ALTERNATIVES and (p := p0 + margin * ratio ** len(alts)) < 1:
        alts.append(p)
    return alts


def cusum_threshold(arl_rounds: float, alternatives: int) -> float:
    """Threshold in nats for an average run length to false alarm ≥ ``arl_rounds``.

    By Lorden (1971) the CUSUM with likelihood-ratio increments and threshold ``h`` has ARL to
    false alarm ≥ e^h observations (rounds here); a union over ``J`` alternatives needs
    ``h = ln(J · ARL)``.
    """
    if not arl_rounds >= 1 or alternatives < 1:
        raise ValueError(
            f"need arl_rounds ≥ 1 and alternatives ≥ 1, got {arl_rounds}, {alternatives}"
        )
    return math.log(alternatives * arl_rounds)


def arl_for_false_alarms(per_year: float, rounds_per_year: float, monitors: int) -> float:
    """ARL per monitor, in rounds, so the fleet's ``monitors`` raise ≤ ``per_year`` false alerts.

    Each monitor expects at most ``rounds_per_year / ARL`` false alarms a year; summed over the
    monitors that is ``per_year``.
    """
    if not (per_year > 0 and rounds_per_year > 0 and monitors >= 1):
        raise ValueError("need per_year > 0, rounds_per_year > 0 and monitors ≥ 1")
    return monitors * rounds_per_year / per_year


def recovery_log_lr(k: int, n: int, p0: float, p_bad: float) -> float:
    """Log LR of "rate = p0" against "rate = p_bad" for ``k`` flagged of ``n`` probes.

    Evidence that a firing regression has gone away: positive when the round looks like the
    baseline. Accumulated as its own CUSUM, ``R = max(0, R + recovery_log_lr(...))``, with
    ``p_bad`` the alarm's `CusumState.alternative`, it resolves an alert only after enough
    healthy evidence (hysteresis) rather than as soon as the alarm score dips.
    """
    if not (0 < p0 < 1 and 0 < p_bad < 1):
        raise ValueError(f"need 0 < p0, p_bad < 1, got p0={p0}, p_bad={p_bad}")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 ≤ k ≤ n, got k={k}, n={n}")
    return k * math.log(p0 / p_bad) + (n - k) * (math.log1p(-p0) - math.log1p(-p_bad))


def oracle_detection_probes(p0: float, p1: float, threshold: float) -> float:
    """``threshold / KL(p1 ‖ p0)``: probes to detect ``p0 → p1`` knowing ``p1`` exactly.

    Wald's approximation (no overshoot) of the expected delay of the CUSUM/SPRT tuned to the
    true post-change rate, at the same threshold: the theoretical minimum for a detector with
    that false-alarm rate, which the grid detector's delays are compared against. ``p1`` may
    be 1 (every probe flagged: a swapped model), where the KL is ``log(1 / p0)``.
    """
    if not 0 < p0 < p1 <= 1:
        raise ValueError(f"need 0 < p0 < p1 ≤ 1, got p0={p0}, p1={p1}")
    return threshold / bernoulli_kl(p1, p0)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _from_iso(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)
