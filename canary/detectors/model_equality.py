"""Model equality: does the endpoint's next-token distribution match the reference model's?

A 4-bit build of the right model diverges from the reference only at near-ties, so
`first_divergence` never flags it (the issue measured 0 of 69); what changes is every
position's distribution. Along a greedy probe, while the endpoint's tokens are the reference's
own greedy tokens, both sides condition on the same prefix and their top-k logprobs are
comparable position by position: the mean KL over those positions is the probe's distance from
the reference model. Numeric noise (an honest bf16 copy) stays orders of magnitude below a
quantized or substituted model, so one number per probe separates them, and the share of
probes above the limit is a rate the gate, the baselines and the alert monitors test like any
other (`canary identity` makes the same measurement a one-off decision with its own tests).

The KL is taken over the union of both top-k sets plus a residual bucket (`bucket_kl`), since
a server reports only its top-k. The reference scorer computes the scores (it has the model's
greedy output with its top-k, `canary.scoring.reference`); this module holds the metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from canary.detectors.base import Detector, Score, ScoringInput
from canary.detectors.metrics import Bins, Explanation, Metric, continuous, rate
from canary.detectors.registry import register_detector
from canary.records import TokenLogprob, ambiguous_token_text, token_key

#: Probability floor for a bucket: keeps log(0) out of the sum without moving any real value.
_FLOOR = 1e-12


def _bucket_probs(top: Mapping[str, float], union: Sequence[str]) -> list[float]:
    """Probabilities of `union` and the residual; unknown tokens share what top-k left over.

    A token outside a reported top-k holds at most the smallest reported value and at most
    the residual: it gets an even share of the residual, capped by that value.
    """
    probs = {key: math.exp(value) for key, value in top.items()}
    missing = sum(key not in probs for key in union)
    residual = max(0.0, 1.0 - sum(probs.values()))
    cap = min(probs.values()) if probs else 1.0
    share = min(cap, residual / (missing + 1)) if missing else 0.0
    out = [probs.get(key, share) for key in union]
    out.append(max(0.0, residual - share * missing))
    total = sum(out) or 1.0
    return [max(p / total, _FLOOR) for p in out]


def bucket_kl(
    reference: Mapping[str, float],
    endpoint: Mapping[str, float],
    *,
    reference_top: int = 5,
    reference_full: bool = True,
) -> float:
    """KL(reference ‖ endpoint) in nats over the union of both top-k sets plus a residual bucket.

    `reference` maps token keys to logprobs: the full distribution (`reference_full`) or
    another endpoint's top-k; its own top-`reference_top` join the union. Over a plain
    partition this would be a lower bound of the true KL (data processing); imputing the
    tokens a side did not report keeps it close to and mostly below it (on random 40-token
    distributions and top-5: median 0.85×, at most 1.15× the true KL).
    """
    ref_top = sorted(reference, key=lambda key: reference[key], reverse=True)[:reference_top]
    union = list(dict.fromkeys([*endpoint, *ref_top]))
    if reference_full:
        ref_sub = {key: reference.get(key, -math.inf) for key in union}
        ref_probs = [math.exp(ref_sub[key]) if ref_sub[key] > -math.inf else 0.0 for key in union]
        ref_probs.append(max(0.0, 1.0 - sum(ref_probs)))
        total = sum(ref_probs) or 1.0
        p = [max(v / total, _FLOOR) for v in ref_probs]
    else:
        p = _bucket_probs(reference, union)
    q = _bucket_probs(endpoint, union)
    return max(0.0, sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True)))


def _key(token: TokenLogprob) -> str | None:
    """The token's comparable key, or None when its text alone does not identify it."""
    if token.bytes is None and ambiguous_token_text(token.token):
        return None
    return token_key(token.token, token.bytes)


def _comparable(token: TokenLogprob, key: str) -> bool:
    """Whether the position's top-k is a distribution to compare: it holds the chosen token
    with its logprob (a greedy server's top-k always does; missing logprobs are no evidence),
    and no partial-token keys, which collide when sent as "" or U+FFFD."""
    top = token.top
    if token.logprob is None or key not in top:
        return False
    return not any(ambiguous_token_text(k) for k in top)


def paired_position_kls(
    endpoint: Sequence[TokenLogprob], reference: Sequence[TokenLogprob]
) -> tuple[list[tuple[int, float]], int | None]:
    """(position, KL(reference ‖ endpoint)) over the shared greedy prefix, and where the
    tokens first differ (None: they never do, over the shorter of the two).

    The position of the first different token is measured too (both sides still saw the same
    prefix there); after it the prefixes differ and positions are no longer paired. A position
    whose top-k is not comparable (`_comparable`) is skipped, and an ambiguous chosen token
    ends the comparison, since its identity cannot be checked.
    """
    kls: list[tuple[int, float]] = []
    for position, (mine, theirs) in enumerate(zip(endpoint, reference, strict=False)):
        a, b = _key(mine), _key(theirs)
        if a is None or b is None:
            return kls, None
        if _comparable(mine, a) and _comparable(theirs, b):
            kls.append((position, bucket_kl(theirs.top, mine.top, reference_full=False)))
        if a != b:
            return kls, position
    return kls, None


@register_detector
@dataclass(frozen=True)
class ModelEquality(Detector):
    """Mean next-token KL from the reference along a greedy probe; flags another model."""

    name: ClassVar[str] = "model_equality"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"topk", "routing"})
    reference: ClassVar[bool] = True
    """Scored by the reference scorer (it has the model); `measure` alone stores nothing."""
    metrics: ClassVar[tuple[Metric, ...]] = (
        continuous(
            "model_kl",
            2e-3,
            Bins(1e-6, 10.0, 140, "log"),
            reason="nats per token from the reference; an honest bf16 copy is near 1e-4, a "
            "4-bit build near 1e-2 (canary identity's kl-margin uses the same 2e-3)",
        ),
        rate(
            "model_mismatch",
            0.05,
            reason="probes whose token distributions are not the reference model's; an honest "
            "copy stays near 0 and a quantized or substituted model is far above 5%",
            explain=Explanation(
                lines=lambda d: [
                    f"mean KL {d.get('mean_kl')} nats/token over {d.get('positions')} "
                    f"positions (limit {d.get('limit')}), max {d.get('max_kl')} at position "
                    f"{d.get('max_at')}"
                ]
            ),
        ),
    )

    max_kl: float = 1e-3
    """Mean KL (nats/token) above which a probe's distributions are another model's. Measured
    on the simulated fleet's topk and routing probes (4 rounds of each per pool, c1 and c8):
    honest copies stay under 2e-4 (fp32 below 1e-11, bf16 and the front door at most 1.8e-4,
    an int8 build 5.5e-5); the 4-bit build's lowest probe is 1.8e-3, the substitute's 2.6e-2,
    and the long-context pool (RoPE stretched ×8) is above 5e-3 on every probe."""
    min_positions: int = 1
    """Probes with fewer paired positions are not judged (the first position always pairs:
    both sides saw the same prompt)."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        return []

    def score_tokens(
        self, endpoint: Sequence[TokenLogprob], reference: Sequence[TokenLogprob]
    ) -> list[Score]:
        """The scores of one greedy output against the reference's greedy output."""
        paired, _ = paired_position_kls(endpoint, reference)
        if len(paired) < self.min_positions:
            return []
        mean = sum(kl for _, kl in paired) / len(paired)
        if mean <= self.max_kl:
            return [Score("model_kl", mean), Score("model_mismatch", 0.0)]
        worst_at, worst = max(paired, key=lambda item: item[1])
        evidence = {
            "mean_kl": round(mean, 5),
            "positions": len(paired),
            "limit": self.max_kl,
            "max_kl": round(worst, 4),
            "max_at": worst_at,
        }
        return [
            Score("model_kl", mean),
            Score("model_mismatch", 1.0, flagged=True, evidence=evidence),
        ]
