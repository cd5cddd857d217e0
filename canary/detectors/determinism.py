"""How often repeats of one probe give the same output, as a pure function.

At temperature 0 (or with a fixed seed on an endpoint that honours it) a healthy replica gives
the same answer every time; a batch-size-dependent kernel bug, like the top-k miscompilation,
shows up as several distinct outputs for one prompt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from canary.detectors.base import GroupDetector, GroupMember, Score, clip
from canary.detectors.metrics import Metric, rate
from canary.detectors.registry import register_detector

if TYPE_CHECKING:
    from canary.probes.model import Probe


@dataclass(frozen=True, slots=True)
class DeterminismSummary:
    """The outputs of k repeats of one probe, summarised."""

    repeats: int
    """Repeats that returned an output (failed requests are left out)."""
    distinct: int
    """Distinct outputs among them."""
    majority_share: float | None
    """Share of repeats that gave the most common output; `None` with no output."""
    majority_output: str | None
    variants: tuple[tuple[str, int], ...] = ()
    """Up to 5 distinct outputs with their counts, most common first (clipped)."""

    def to_scores(self, expect_identical: bool = False) -> list[Score]:
        """``distinct_outputs`` and ``majority_share``; with ``expect_identical`` (greedy or
        seeded probes) more than one distinct output is flagged."""
        flagged = expect_identical and self.distinct > 1
        evidence = (
            {"repeats": self.repeats, "variants": [list(v) for v in self.variants]}
            if self.distinct > 1
            else None
        )
        return [
            Score("distinct_outputs", float(self.distinct), flagged=flagged, evidence=evidence),
            Score("majority_share", self.majority_share),
        ]


def summarize_repeats(outputs: Sequence[str | None]) -> DeterminismSummary:
    """Distinct count and majority share of the repeats' outputs (`None` = failed request)."""
    counts = Counter(o for o in outputs if o is not None)
    repeats = sum(counts.values())
    if not repeats:
        return DeterminismSummary(repeats=0, distinct=0, majority_share=None, majority_output=None)
    ranked = counts.most_common()
    majority, majority_count = ranked[0]
    return DeterminismSummary(
        repeats=repeats,
        distinct=len(counts),
        majority_share=majority_count / repeats,
        majority_output=majority,
        variants=tuple((clip(text, 120), count) for text, count in ranked[:5]),
    )


@register_detector
@dataclass(frozen=True)
class DeterminismDetector(GroupDetector):
    """Each repeat against its group: ``distinct_outputs`` of the group, and
    ``majority_mismatch``, flagged when a greedy or seeded repeat differs from the majority."""

    name: ClassVar[str] = "determinism"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"determinism"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "majority_mismatch",
            0.01,
            reason="batching makes a few greedy repeats differ on healthy servers; 1% more is "
            "nondeterminism beyond batch effects",
        ),
    )

    def score_group(self, probe: Probe, members: Sequence[GroupMember]) -> list[tuple[int, Score]]:
        texts = [(m.result_id, None if m.error_kind else m.output_text) for m in members]
        summary = summarize_repeats([text for _, text in texts])
        if summary.repeats < 2:
            return []
        params = probe.params
        expect_identical = params.temperature == 0.0 or params.seed is not None
        evidence = None
        if summary.distinct > 1:
            evidence = {"repeats": summary.repeats, "variants": [list(v) for v in summary.variants]}
        out: list[tuple[int, Score]] = []
        for result_id, text in texts:
            if text is None:
                continue
            mismatch = text != summary.majority_output
            out.append((result_id, Score("distinct_outputs", float(summary.distinct))))
            out.append(
                (
                    result_id,
                    Score(
                        "majority_mismatch",
                        float(mismatch),
                        flagged=expect_identical and mismatch,
                        evidence=evidence if mismatch else None,
                    ),
                )
            )
        return out
