"""The value every two-sample test returns: effect, interval, p-value and detectable effect."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from canary.stats.policy import MetricKind


@dataclass(frozen=True)
class TestResult:
    """One metric compared before vs after.

    ``effect`` is signed so that POSITIVE = WORSE for the policy's direction (for ``two_sided``
    it is after − before). ``[ci_low, ci_high]`` is a two-sided 1 − 2α interval, so each bound is
    a one-sided 1 − α bound: ``ci_low > 0`` agrees with the one-sided test at α and
    ``ci_high < margin`` is a level-α test that the effect is below the margin.
    ``p_value`` is one-sided towards worse (two-sided for ``two_sided`` and distributions);
    ``mde`` is the smallest effect the test detects with probability ``power`` at these n.
    """

    __test__ = False  # not a pytest class

    metric: str
    kind: MetricKind
    method: str
    n_before: int
    n_after: int
    estimate_before: float
    estimate_after: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    mde: float
    power: float
    alpha: float = 0.05
    details: dict[str, Any] = field(default_factory=dict)
    """Method-specific extras (Cliff's delta, U, pooled categories, bin width, ...)."""

    @property
    def has_data(self) -> bool:
        return self.n_before > 0 and self.n_after > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: non-finite floats become ``None``."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "kind": self.kind,
            "method": self.method,
            "n_before": self.n_before,
            "n_after": self.n_after,
        }
        for name in (
            "estimate_before",
            "estimate_after",
            "effect",
            "ci_low",
            "ci_high",
            "p_value",
            "mde",
            "power",
            "alpha",
        ):
            out[name] = _finite(getattr(self, name))
        out["details"] = {
            k: _finite(v) if isinstance(v, float) else v for k, v in self.details.items()
        }
        return out


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def no_data(
    metric: str, kind: MetricKind, method: str, n_b: int, n_a: int, power: float, alpha: float
) -> TestResult:
    """The result when either side has no observations."""
    nan = math.nan
    return TestResult(
        metric, kind, method, n_b, n_a, nan, nan, nan, nan, nan, nan, nan, power, alpha
    )
