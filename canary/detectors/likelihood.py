"""Reference likelihood: how surprised the reference model is by the output, per token.

Word salad made of real words passes every character and dictionary check; no correct model
would write it, so its mean negative log-likelihood under the reference model is far above
what healthy outputs score. The measurement needs the reference model's log-probabilities of
the output's tokens (teacher forcing on prompt + output), which `canary.scoring.reference`
computes (`canary.scoring.likelihood`, for every probe kind when a local reference model
judges the fleet); this module holds the pure metric and declares what is stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from canary.detectors.base import Detector, Score, ScoringInput
from canary.detectors.metrics import Bins, Explanation, Metric, continuous, rate
from canary.detectors.registry import register_detector


def mean_nll(logprobs: Sequence[float | None]) -> float | None:
    """Mean negative log-likelihood (nats per token) of the finite ``logprobs``; None if none."""
    finite = [lp for lp in logprobs if lp is not None and math.isfinite(lp)]
    if not finite:
        return None
    return -sum(finite) / len(finite)


@register_detector
@dataclass(frozen=True)
class ReferenceLikelihood(Detector):
    """Mean per-token NLL of the output under the reference model; flags implausible text."""

    name: ClassVar[str] = "likelihood"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    reference: ClassVar[bool] = True
    """Scored by the reference scorer (it has the model); `measure` alone stores nothing."""
    metrics: ClassVar[tuple[Metric, ...]] = (
        continuous(
            "reference_nll",
            0.1,
            Bins(0.0, 20.0, 200),
            reason="nats per token under the reference; numeric noise moves it by hundredths",
        ),
        rate(
            "implausible_text",
            0.005,
            reason="text no correct model would write, on 0.5% more answers, is a fault",
            explain=Explanation(lines=lambda d: [f"mean NLL {d.get('nll')} nats/token"]),
        ),
    )

    max_nll: float = 8.0
    """Mean NLL (nats/token) above which the output is text no correct model would write.
    Healthy simulated-fleet outputs of every shipped suite stay under 6.9 (2,554 outputs, fp32,
    bf16 and long-context pools); corrupted logits reach 8.8–12 (docs/detectors.md)."""
    min_tokens: int = 8
    """Outputs with fewer scored tokens are too short to judge."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        return []

    def score_logprobs(self, logprobs: Sequence[float | None]) -> list[Score]:
        """The scores of one output from the reference's log-probabilities of its tokens."""
        nll = mean_nll(logprobs)
        scored = sum(1 for lp in logprobs if lp is not None and math.isfinite(lp))
        if nll is None or scored < self.min_tokens:
            return [Score("reference_nll", nll), Score("implausible_text", 0.0)]
        if nll <= self.max_nll:
            return [Score("reference_nll", nll), Score("implausible_text", 0.0)]
        evidence = {"nll": round(nll, 3), "tokens": scored, "limit": self.max_nll}
        return [
            Score("reference_nll", nll),
            Score("implausible_text", 1.0, flagged=True, evidence=evidence),
        ]
