"""A canary detector plugin in one file: answers that shout.

Everything canary needs is declared on the class: the probe kind it scores, its metric's kind
and policy, and how reports explain its evidence. Installed, its metric is compared, baselined,
alerted on and reported like a built-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from canary.detectors import Detector, Explanation, Metric, Score, ScoringInput, Span
from canary.detectors.metrics import rate


@dataclass(frozen=True)
class Shouting(Detector):
    """Flags answers whose letters are mostly upper case."""

    name: ClassVar[str] = "shouting"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"shout"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "shouted",
            0.01,
            explain=Explanation(
                spans=lambda v: [Span(0, len(v.text), "shouted", "mostly upper case")],
                lines=lambda d: [f"{d.get('upper_share', 0):.0%} of the letters are upper case"],
                detail=lambda v: dict(v.evidence or {}),
            ),
        ),
    )

    threshold: float = 0.6

    def measure(self, inp: ScoringInput) -> list[Score]:
        letters = [c for c in inp.output_text or "" if c.isalpha()]
        share = sum(c.isupper() for c in letters) / len(letters) if letters else 0.0
        if share > self.threshold:
            return [Score("shouted", 1.0, flagged=True, evidence={"upper_share": share})]
        return [Score("shouted", 0.0)]
