"""Always-valid monitoring of a flag rate, checked after every daemon round.

Checking a fixed-n test after every round inflates false alarms without bound. Here the evidence
is a mixture likelihood ratio (a mixture SPRT): under any true rate ≤ ``p0`` it is a nonnegative
supermartingale with mean ≤ 1, so by Ville's inequality

    P(the monitor ever alarms, at any round, however long it runs) ≤ α

— the stated false-alarm rate, for checks after every round. The mixture is over alternatives
``p0 + margin·2^j`` (j = 0, 1, …), weighted towards the smallest: an increase of the margin's
size is detected at about the cost of Wald's SPRT designed for it, a large one faster. Rates
between ``p0`` and ``p0 + margin`` are the indifference zone: they may or may not alarm.

``p0`` is taken as known. Use `baseline_upper_rate` (a Clopper–Pearson upper bound) to build
it from a finite baseline; the false-alarm bound then becomes α + (1 − confidence). With
``p0 = 0`` the first flag alarms (it is impossible under the null), which is rarely wanted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_ALTERNATIVES = 12


@dataclass(frozen=True)
class SequentialState:
    """The monitor after an update; stored by the daemon between rounds."""

    e_value: float
    """Current mixture likelihood ratio (evidence against "rate ≤ p0")."""
    p_value: float
    """Always-valid p-value: min(1, 1 / the largest e-value so far)."""
    alarm: bool
    """The e-value has reached 1/α at some round (latched until `reset`)."""
    n_total: int
    k_total: int
    alarm_n: int | None = None
    """``n_total`` at the round that first alarmed."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["e_value"] = _json_float(self.e_value)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequentialState:
        d = dict(data)
        d["e_value"] = math.inf if d.get("e_value") is None else float(d["e_value"])
        return cls(**d)


@dataclass
class SequentialRateMonitor:
    """Mixture SPRT of "flag rate ≤ p0" against "rate ≥ p0 + margin", updated with (k, n)."""

    p0: float
    margin: float
    alpha: float = 0.05
    ratio: float = 2.0
    """Spacing of the alternatives: p0 + margin·ratio^j."""
    decay: float = 0.5
    """Prior weight of alternative j ∝ decay^j (most weight on the smallest increase)."""
    k_total: int = 0
    n_total: int = 0
    log_e_max: float = 0.0
    alarm_n: int | None = None
    _alts: list[tuple[float, float]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.p0 < 1:
            raise ValueError(f"p0 must be in [0, 1), got {self.p0}")
        if not self.margin > 0 or self.p0 + self.margin >= 1:
            raise ValueError(f"margin must be > 0 with p0 + margin < 1, got {self.margin}")
        if not 0 < self.alpha < 1 or self.ratio <= 1 or not 0 < self.decay <= 1:
            raise ValueError("need 0 < alpha < 1, ratio > 1, 0 < decay ≤ 1")
        alts = []
        j = 0
        while j < MAX_ALTERNATIVES and self.p0 + self.margin * self.ratio**j < 1:
            alts.append((self.p0 + self.margin * self.ratio**j, self.decay**j))
            j += 1
        total = sum(w for _, w in alts)
        self._alts = [(p, math.log(w / total)) for p, w in alts]

    def log_e(self) -> float:
        """log of the mixture likelihood ratio at the current totals."""
        k, n = self.k_total, self.n_total
        terms = [lw + _log_lr(k, n, p, self.p0) for p, lw in self._alts]
        top = max(terms)
        if math.isinf(top):
            return top
        return top + math.log(sum(math.exp(t - top) for t in terms))

    def update(self, k: int, n: int) -> SequentialState:
        """Add one round: ``k`` flagged of ``n`` probes. Returns the state after it."""
        if n < 0 or not 0 <= k <= n:
            raise ValueError(f"need 0 ≤ k ≤ n, got k={k}, n={n}")
        self.k_total += k
        self.n_total += n
        self.log_e_max = max(self.log_e_max, self.log_e())
        if self.alarm_n is None and self.log_e_max >= math.log(1 / self.alpha):
            self.alarm_n = self.n_total
        return self.state

    @property
    def state(self) -> SequentialState:
        return SequentialState(
            e_value=_exp(self.log_e()),
            p_value=min(1.0, _exp(-self.log_e_max)),
            alarm=self.alarm_n is not None,
            n_total=self.n_total,
            k_total=self.k_total,
            alarm_n=self.alarm_n,
        )

    def reset(self) -> None:
        """Start a fresh test (e.g. after an incident is resolved); the guarantee restarts."""
        self.k_total = self.n_total = 0
        self.log_e_max = 0.0
        self.alarm_n = None

    def to_dict(self) -> dict[str, Any]:
        """Config and totals, JSON-safe, for the daemon's database."""
        return {
            "p0": self.p0,
            "margin": self.margin,
            "alpha": self.alpha,
            "ratio": self.ratio,
            "decay": self.decay,
            "k_total": self.k_total,
            "n_total": self.n_total,
            "log_e_max": _json_float(self.log_e_max),
            "alarm_n": self.alarm_n,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequentialRateMonitor:
        d = dict(data)
        d["log_e_max"] = math.inf if d.get("log_e_max") is None else float(d["log_e_max"])
        return cls(**d)


def _log_lr(k: int, n: int, p1: float, p0: float) -> float:
    """log of P(k of n | p1) / P(k of n | p0) for Bernoulli flags."""
    if k > 0 and p0 == 0:
        return math.inf
    up = k * math.log(p1 / p0) if k else 0.0
    return up + (n - k) * (math.log1p(-p1) - math.log1p(-p0))


def _exp(x: float) -> float:
    return math.inf if x > 700 else math.exp(x)


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def bernoulli_kl(p: float, q: float) -> float:
    """KL(Bernoulli(p) ‖ Bernoulli(q)) in nats."""
    out = 0.0
    if p > 0:
        out += p * math.log(p / q)
    if p < 1:
        out += (1 - p) * math.log((1 - p) / (1 - q))
    return out


def expected_sample_size_sprt(
    p0: float, p1: float, alpha: float = 0.05, beta: float = 0.2, *, under: str = "h1"
) -> float:
    """Wald's approximate expected sample size of the SPRT of p0 vs p1 (no overshoot).

    Under H1: ``((1−β)·ln A + β·ln B) / KL(p1‖p0)`` with ``A = (1−β)/α``, ``B = β/(1−β)``;
    under H0: ``(α·ln A + (1−α)·ln B) / −KL(p0‖p1)``. Wald's test also stops to accept H0, which
    a monitor never does, so a power-one monitor needs more: see `expected_sample_size_power_one`.
    """
    a, b = math.log((1 - beta) / alpha), math.log(beta / (1 - beta))
    if under == "h1":
        return ((1 - beta) * a + beta * b) / bernoulli_kl(p1, p0)
    return (alpha * a + (1 - alpha) * b) / -bernoulli_kl(p0, p1)


def expected_sample_size_power_one(p0: float, p1: float, alpha: float = 0.05) -> float:
    """``ln(1/α) / KL(p1‖p0)``: the open-ended SPRT's expected detection time (no overshoot)."""
    return math.log(1 / alpha) / bernoulli_kl(p1, p0)


def baseline_upper_rate(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper–Pearson upper bound of a baseline rate (0/n gives about 3/n)."""
    from scipy.stats import beta

    if n <= 0:
        raise ValueError("baseline needs n > 0")
    if k >= n:
        return 1.0
    return float(beta.ppf(confidence, k + 1, n - k))
