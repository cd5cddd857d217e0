"""Border inputs (B3IT): prompts whose top-2 next tokens nearly tie at temperature 0.

A tiny change to the weights flips such a choice, while the endpoint needs to return no
logprobs: its greedy first token against the reference's recorded choice is the observation.
Honest numerical noise flips some too, so the flip count is tested against the flip rate the
noise explains, `noise_rate`, with scipy's one-sided binomial test; "same" needs the upper
confidence bound of the flip rate under `margin`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Flip rate expected from honest numerical noise on a generated border set. Measured on the
#: shipped model: its bf16 copy flips 1 of 485 candidates with a top-2 gap in [0.05, 0.5] nats
#: (7 of 74 below 0.05, which is why `MIN_GAP` excludes them). 3% is about ten times that,
#: room for an engine noisier than plain bf16 (batching, other kernels).
DEFAULT_NOISE_RATE = 0.03
#: Flip rate an endpoint may show and still be judged "same" (its upper bound must be below).
DEFAULT_SAME_MARGIN = 0.10

BorderVerdict = Literal["different", "same", "inconclusive"]


@dataclass(frozen=True)
class FlipTest:
    """Flips of the reference's recorded choice, and what they say."""

    verdict: BorderVerdict
    flips: int
    prompts: int
    flip_rate: float
    p_value: float
    """Binomial p-value of "flip rate ≤ noise_rate" (small: different)."""
    p_same: float
    """Binomial p-value of "flip rate ≥ same_margin" (small: same)."""
    upper: float
    """One-sided (1 - α) upper bound on the flip rate (Clopper–Pearson)."""
    noise_rate: float


def flip_test(
    flips: int,
    prompts: int,
    *,
    noise_rate: float = DEFAULT_NOISE_RATE,
    same_margin: float = DEFAULT_SAME_MARGIN,
    alpha: float = 0.05,
) -> FlipTest:
    """Binomial test of `flips` out of `prompts` against the noise flip rate."""
    from scipy.stats import binomtest

    if prompts == 0:
        return FlipTest("inconclusive", 0, 0, float("nan"), 1.0, 1.0, 1.0, noise_rate)
    res = binomtest(flips, prompts, noise_rate, alternative="greater")
    same = binomtest(flips, prompts, same_margin, alternative="less")
    upper = float(same.proportion_ci(confidence_level=1 - alpha, method="exact").high)
    verdict: BorderVerdict = "inconclusive"
    if res.pvalue <= alpha:
        verdict = "different"
    elif same.pvalue <= alpha:
        verdict = "same"
    return FlipTest(
        verdict,
        flips,
        prompts,
        flips / prompts,
        float(res.pvalue),
        float(same.pvalue),
        upper,
        noise_rate,
    )
