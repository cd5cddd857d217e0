"""Sampling probes against the reference model's next-token distribution (declaration).

`canary.scoring.reference` owns the model and scores each group of samples: every sample's first
token (``sampling_first_token``, compared across cohorts as a category mix per probe) and
whether the correct sampler could have drawn it at all (``first_token_out_of_support``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from canary.detectors.base import GroupDetector
from canary.detectors.metrics import Metric, rate
from canary.detectors.registry import register_detector


@register_detector
@dataclass(frozen=True)
class SamplingDetector(GroupDetector):
    """First tokens of n samples against the reference's filtered distribution."""

    name: ClassVar[str] = "sampling"
    version: ClassVar[str] = "2"
    kinds: ClassVar[frozenset[str]] = frozenset({"sampling"})
    reference: ClassVar[bool] = True
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "first_token_out_of_support",
            0.003,
            critical=True,
            reason="any rise is a sampling fault; 0.3% is the smallest rise 4,000 clean probes "
            "rule out with an anytime-valid test at α = 0.05",
        ),
        Metric(
            "sampling_first_token",
            "distribution",
            0.05,
            category="token",
            reason="Cohen's w of 0.05 is a small but real change of the sampled mix",
        ),
    )
