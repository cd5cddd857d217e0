"""One verdict from several tests: "different" needs a rejection, "same" needs an equivalence
bound, and everything else is "inconclusive".

Each test that ran contributes a p-value for "different"; they are Bonferroni-corrected over
the tests run (the family is small and its members dependent, where Bonferroni stays valid).
"same" is never read off a non-significant p: it needs a test with an equivalence bound (the
KL margin with logprobs, the border flip rate without) to say "same" at level α, and no test
to reject. This is the honesty `canary compare` keeps between pass and inconclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["same", "different", "inconclusive"]
EXIT_CODES: dict[str, int] = {"same": 0, "different": 1, "inconclusive": 2}


@dataclass(frozen=True)
class TestOutcome:
    """One test's result in the common shape the verdict and the renderers read."""

    name: str
    p_value: float
    """p-value of the null "the endpoint serves the trusted model" (small: different)."""
    p_same: float | None = None
    """p-value of the null "the difference reaches the margin" (small: same); only tests
    with an equivalence bound have one."""
    samples: int = 0
    effects: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def combine(outcomes: Sequence[TestOutcome], alpha: float) -> tuple[Verdict, float]:
    """The verdict and the per-test level α/k each p-value was held to."""
    if not outcomes:
        return "inconclusive", alpha
    level = alpha / len(outcomes)
    if any(o.p_value <= level for o in outcomes):
        return "different", level
    if any(o.p_same is not None and o.p_same <= level for o in outcomes):
        return "same", level
    return "inconclusive", level
