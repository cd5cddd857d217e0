"""Whether a prompt served warm from a prefix cache gives the output it gave cold.

A prefix cache is an optimisation: reusing a prompt's cached K/V must not change a greedy
answer. A cache that reuses K/V computed in another context (a block keyed without its
parent's hash, vLLM#5543, SGLang#4175) does, and only on the warm request, so the probe sends
the same greedy prompt twice in one session chain (`probes/prefix_cache.yaml`): the first
repeat fills the cache, the second reads it. Results are stored in the order they complete and
the chain sends one request at a time, so the lowest result id of a group is the cold one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from canary.detectors.base import GroupDetector, GroupMember, Score, clip
from canary.detectors.metrics import Bins, Metric, continuous, rate
from canary.detectors.registry import register_detector

if TYPE_CHECKING:
    from canary.probes.model import Probe


@dataclass(frozen=True, slots=True)
class WarmComparison:
    """A warm output against the cold one of the same prompt."""

    same: bool
    agreement: float | None
    """Share of positions whose greedy token matches the cold output's (None: no tokens)."""
    first_difference: int | None
    """First generated position where the tokens (or, without tokens, characters) differ."""


def compare_warm(cold: GroupMember, warm: GroupMember) -> WarmComparison:
    """Text equality, token agreement and the first differing position of a warm output."""
    same = cold.output_text == warm.output_text
    if cold.tokens is not None and warm.tokens is not None:
        a = [t.token for t in cold.tokens]
        b = [t.token for t in warm.tokens]
        longest = max(len(a), len(b))
        matches = sum(x == y for x, y in zip(a, b, strict=False))
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        if first is None and len(a) != len(b):
            first = min(len(a), len(b))
        agreement = matches / longest if longest else 1.0
        return WarmComparison(same and first is None, agreement, first)
    if same:
        return WarmComparison(True, None, None)
    x, y = cold.output_text or "", warm.output_text or ""
    first = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), None)
    return WarmComparison(False, None, min(len(x), len(y)) if first is None else first)


@register_detector
@dataclass(frozen=True)
class PrefixCacheDetector(GroupDetector):
    """Each warm repeat against the cold one: ``warm_mismatch``, flagged when a greedy warm
    output differs, and ``warm_token_agreement``."""

    name: ClassVar[str] = "prefix_cache"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"prefix_cache"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "warm_mismatch",
            0.05,
            reason="a correct cache never changes an fp32 greedy answer (0 of 120 warm repeats "
            "on the healthy fleet), but bf16 decoding flips near-ties with batch composition "
            "(7 of 120, 6 of 60 without a cache); 5% more is a cache serving another context",
        ),
        continuous(
            "warm_token_agreement",
            0.05,
            Bins(0.0, 1.0, 100),
            "lower_is_worse",
            reason="how much of the answer survives a stale cache; 5% less agreement is "
            "visible in the diverging tails of the evidence",
        ),
    )

    def score_group(self, probe: Probe, members: Sequence[GroupMember]) -> list[tuple[int, Score]]:
        answered = sorted(
            (m for m in members if not m.error_kind and m.output_text is not None),
            key=lambda m: m.result_id,
        )
        if len(answered) < 2:
            return []
        greedy = probe.params.temperature == 0.0 or probe.params.seed is not None
        cold = answered[0]
        out: list[tuple[int, Score]] = []
        for warm in answered[1:]:
            found = compare_warm(cold, warm)
            evidence: dict[str, Any] | None = None
            if not found.same:
                evidence = {
                    "cold_result_id": cold.result_id,
                    "first_difference": found.first_difference,
                    "cold": clip(cold.output_text or "", 200),
                    "warm": clip(warm.output_text or "", 200),
                }
            out.append(
                (
                    warm.result_id,
                    Score(
                        "warm_mismatch",
                        float(not found.same),
                        flagged=greedy and not found.same,
                        evidence=evidence,
                    ),
                )
            )
            if found.agreement is not None:
                out.append((warm.result_id, Score("warm_token_agreement", found.agreement)))
        return out
