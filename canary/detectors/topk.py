"""Token-level agreement between an endpoint and a reference model, as pure functions.

The approximate top-k miscompilation dropped the most probable token: greedy outputs diverged
from what the model actually predicts, while text-level checks saw nothing odd. Comparing the
endpoint's tokens with a reference model's predictions at the same positions exposes it.

How it is called: the reference runner scores the endpoint's own output with the reference model
(teacher forcing), giving one `TokenLogprob` per endpoint position whose ``top`` holds the
reference's most likely next tokens; then ``compare_to_reference(endpoint_tokens,
reference_tokens, endpoint_text, reference_text)`` returns a `TopkAgreement`, and
``agreement.to_scores()`` the metrics to store. A reference produced by free greedy decoding works
too: positions after the first divergence then compare different contexts, so read
``first_divergence`` and ``prefix_agreement`` rather than the rates.

Both sides must use the same tokenizer; tokens are compared as strings. Endpoints that return no
logprobs are compared on their tokens, or on the text when they return no tokens either.

A missing logprob is not evidence. A chosen-token logprob of None (the endpoint sent none, or
sent NaN/±Infinity/a non-number, which the adapters and the store turn into None) and any
alternative whose logprob is not a finite number are ignored: the logprob metrics skip such a
position, and a metric with no position left to judge is None (not scorable), never 0 or a flag.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from canary.detectors import topk_evidence as shown
from canary.detectors.base import GroupDetector, Score, clip
from canary.detectors.metrics import Bins, Explanation, Metric, continuous, rate
from canary.detectors.registry import register_detector
from canary.records import TokenLogprob, finite_logprob

#: A greedy endpoint that passes over a reference top-1 the reference preferred by at least this
#: many nats (a factor e^0.5 ≈ 1.65) is flagged. Near-ties, like honest bf16 rounding (gaps of
#: ~0.01 nats), are measured in the agreement rates but never flagged.
DEFAULT_MIN_GAP_NATS = 0.5
#: Logprobs this close count as tied when checking that a greedy token is its own argmax.
TIE_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class TopkAgreement:
    """How closely an endpoint's tokens follow the reference model's predictions."""

    method: str
    """``logprobs`` (tokens with logprobs), ``tokens`` (tokens only) or ``text``."""
    positions: int
    """Aligned positions compared (0 for ``text``)."""
    top1_agreement: float | None = None
    """Share of positions where the endpoint chose the reference's top-1 token."""
    first_divergence: int | None = None
    """First position (token index; character index for ``text``) where they differ."""
    ref_top1_in_topk: float | None = None
    """Share of positions where the reference top-1 is among the endpoint's returned top-k."""
    mean_logprob_gap: float | None = None
    """Mean of endpoint top-1 logprob − endpoint logprob of the reference top-1 (≥ 0)."""
    max_logprob_gap: float | None = None
    mean_kl: float | None = None
    """Mean KL(reference ‖ endpoint) in nats over the shared top-k, renormalised."""
    max_kl: float | None = None
    prefix_agreement: float | None = None
    """Common prefix / reference length, in tokens (or characters for ``text``)."""
    divergence: dict[str, Any] | None = None
    """What happened at `first_divergence`: both tokens, both top-k, the preceding text."""
    confident_divergence: bool = False
    """The endpoint passed over a reference top-1 the reference preferred by ≥ `min_gap` nats."""
    not_argmax: float | None = None
    """Share of positions where the greedy endpoint chose a token below the top of its *own*
    reported logprobs: a sampler that drops the most probable token (approximate top-k)."""
    not_argmax_evidence: dict[str, Any] | None = None

    def to_scores(self) -> list[Score]:
        """The metrics to store; only a confident divergence is flagged."""
        scores = [
            Score("top1_agreement", self.top1_agreement),
            Score(
                "first_divergence",
                None if self.first_divergence is None else float(self.first_divergence),
                flagged=self.confident_divergence,
                evidence=self.divergence,
            ),
            Score("prefix_agreement", self.prefix_agreement),
        ]
        if self.method == "logprobs":
            if self.not_argmax is not None:
                scores.append(
                    Score(
                        "greedy_not_argmax",
                        self.not_argmax,
                        flagged=self.not_argmax > 0,
                        evidence=self.not_argmax_evidence,
                    )
                )
            scores += [
                Score("ref_top1_in_topk", self.ref_top1_in_topk),
                Score("mean_logprob_gap", self.mean_logprob_gap),
                Score("mean_shared_kl", self.mean_kl),
            ]
        return scores


@register_detector
@dataclass(frozen=True)
class TopkDetector(GroupDetector):
    """Greedy ``topk``/``routing`` outputs against the reference model's tokens (scored by
    `canary.scoring.reference`, which owns the model)."""

    name: ClassVar[str] = "topk"
    version: ClassVar[str] = "2"
    kinds: ClassVar[frozenset[str]] = frozenset({"topk", "routing"})
    reference: ClassVar[bool] = True
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "first_divergence",
            0.005,
            critical=True,
            explain=Explanation(
                spans=lambda v: shown.divergence_span(v.text, v.tokens, v.located),
                detail=lambda v: shown.divergence_detail(v.tokens, v.evidence),
                lines=shown.divergence_lines,
                severity=lambda ev: float(ev.get("reference_gap_nats") or 0.0),
            ),
        ),
        rate(
            "greedy_not_argmax",
            0.001,
            critical=True,
            explain=Explanation(
                spans=lambda v: shown.not_argmax_span(v.text, v.tokens, v.located),
                detail=lambda v: shown.not_argmax_detail(v.evidence),
            ),
        ),
        continuous("top1_agreement", 0.02, Bins(0.0, 1.0, 100), "lower_is_worse"),
        continuous("mean_logprob_gap", 0.05, Bins(0.0, 10.0, 200)),
        continuous("mean_shared_kl", 0.02, Bins(0.0, 4.0, 200)),
    )


def top1(position: TokenLogprob) -> str:
    """The most likely token at a position: the best of ``top``, else the chosen token."""
    top = _finite_top(position)
    if top:
        return max(top.items(), key=lambda item: item[1])[0]
    return position.token


def top1_agreement(
    endpoint: Sequence[TokenLogprob], reference: Sequence[TokenLogprob]
) -> list[bool]:
    """Per aligned position: did the endpoint choose the reference's top-1 token?"""
    return [e.token == top1(r) for e, r in zip(endpoint, reference, strict=False)]


def first_divergence(
    agreement: Sequence[bool], endpoint_len: int, reference_len: int
) -> int | None:
    """First disagreeing position; the shorter length when one side stops early; else `None`."""
    for index, agrees in enumerate(agreement):
        if not agrees:
            return index
    return None if endpoint_len == reference_len else min(endpoint_len, reference_len)


def ref_top1_in_topk_rate(
    endpoint: Sequence[TokenLogprob], reference: Sequence[TokenLogprob]
) -> float | None:
    """Share of positions (where the endpoint returned a top-k) holding the reference top-1."""
    hits = total = 0
    for e, r in zip(endpoint, reference, strict=False):
        top = _finite_top(e)
        if top:
            total += 1
            best = top1(r)
            hits += best in top or best == e.token
    return hits / total if total else None


def logprob_gap(endpoint: TokenLogprob, reference: TokenLogprob) -> float | None:
    """Endpoint top-1 logprob minus the endpoint's logprob of the reference top-1.

    0 when the endpoint ranks the reference's choice first; `None` when the endpoint did not
    return a logprob for that token (it fell out of the returned top-k).
    """
    known = _logprobs(endpoint)
    best = top1(reference)
    if best not in known:
        return None
    return max(known.values()) - known[best]


def shared_topk_kl(endpoint: TokenLogprob, reference: TokenLogprob) -> float | None:
    """KL(reference ‖ endpoint) in nats over the tokens both top-k lists hold, renormalised.

    `None` when the lists share no token; 0 when they share one (nothing to compare).
    """
    ref, end = _logprobs(reference), _logprobs(endpoint)
    shared = [t for t in ref if t in end]
    if not shared:
        return None
    ref_norm = _logsumexp([ref[t] for t in shared])
    end_norm = _logsumexp([end[t] for t in shared])
    kl = 0.0
    for t in shared:
        log_p = ref[t] - ref_norm
        kl += math.exp(log_p) * (log_p - (end[t] - end_norm))
    return max(0.0, kl)


def common_prefix_length(a: str, b: str) -> int:
    """Characters ``a`` and ``b`` share from the start."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def text_prefix_agreement(endpoint_text: str, reference_text: str) -> float | None:
    """Common prefix characters / reference length (1 when both are empty)."""
    if not reference_text:
        return 1.0 if not endpoint_text else 0.0
    return common_prefix_length(endpoint_text, reference_text) / len(reference_text)


def token_prefix_agreement(
    endpoint: Sequence[TokenLogprob], reference: Sequence[TokenLogprob]
) -> float | None:
    """Common prefix of chosen tokens / reference length."""
    if not reference:
        return 1.0 if not endpoint else 0.0
    common = 0
    for e, r in zip(endpoint, reference, strict=False):
        if e.token != r.token:
            break
        common += 1
    return common / len(reference)


def compare_to_reference(
    endpoint: Sequence[TokenLogprob] | None,
    reference: Sequence[TokenLogprob] | None,
    endpoint_text: str | None = None,
    reference_text: str | None = None,
    min_gap: float = DEFAULT_MIN_GAP_NATS,
) -> TopkAgreement:
    """Everything above in one value, using the richest data both sides have.

    For greedy probes: ``min_gap`` (nats) is how strongly the reference must prefer its top-1
    for a divergence to be flagged.
    """
    if not endpoint or not reference:
        return _compare_text(endpoint_text or "", reference_text or "")
    agreement = top1_agreement(endpoint, reference)
    divergence_at = first_divergence(agreement, len(endpoint), len(reference))
    divergence, confident = _divergence(endpoint, reference, divergence_at, min_gap)
    base = TopkAgreement(
        method="tokens",
        positions=len(agreement),
        top1_agreement=sum(agreement) / len(agreement),
        first_divergence=divergence_at,
        prefix_agreement=token_prefix_agreement(endpoint, reference),
        divergence=divergence,
        confident_divergence=confident,
    )
    if not any(_logprobs(e) for e in endpoint):
        return base
    pairs = list(zip(endpoint, reference, strict=False))
    gaps = [g for e, r in pairs if (g := logprob_gap(e, r)) is not None]
    kls = [k for e, r in pairs if (k := shared_topk_kl(e, r)) is not None]
    not_argmax, not_argmax_evidence = greedy_not_argmax(endpoint)
    return dataclasses.replace(
        base,
        method="logprobs",
        not_argmax=not_argmax,
        not_argmax_evidence=not_argmax_evidence,
        ref_top1_in_topk=ref_top1_in_topk_rate(endpoint, reference),
        mean_logprob_gap=sum(gaps) / len(gaps) if gaps else None,
        max_logprob_gap=max(gaps) if gaps else None,
        mean_kl=sum(kls) / len(kls) if kls else None,
        max_kl=max(kls) if kls else None,
    )


def _compare_text(endpoint_text: str, reference_text: str) -> TopkAgreement:
    prefix = common_prefix_length(endpoint_text, reference_text)
    same = endpoint_text == reference_text
    divergence = None
    if not same:
        divergence = {
            "index": prefix,
            "endpoint": clip(endpoint_text[prefix : prefix + 40], 40),
            "reference": clip(reference_text[prefix : prefix + 40], 40),
            "before": endpoint_text[max(0, prefix - 40) : prefix],
        }
    return TopkAgreement(
        method="text",
        positions=0,
        first_divergence=None if same else prefix,
        prefix_agreement=text_prefix_agreement(endpoint_text, reference_text),
        divergence=divergence,
    )


def greedy_not_argmax(
    endpoint: Sequence[TokenLogprob],
) -> tuple[float | None, dict[str, Any] | None]:
    """Share of positions whose chosen token is below the best of the endpoint's own top-k.

    Needs no reference: at temperature 0 a correct sampler always takes its own argmax, so a
    chosen token that its own logprobs rank lower means the sampler dropped the top token.
    ``None`` when the endpoint returned no alternatives.
    """
    judged = 0
    bad: list[int] = []
    for index, position in enumerate(endpoint):
        top = _finite_top(position)
        chosen = finite_logprob(position.logprob)
        if not top or chosen is None:  # missing logprobs are not evidence: skip the position
            continue
        judged += 1
        if chosen < max(top.values()) - TIE_TOLERANCE:
            bad.append(index)
    if not judged:
        return None, None
    evidence = None
    if bad:
        at = endpoint[bad[0]]
        evidence = {
            "index": bad[0],
            "positions": bad[:20],
            "chosen": at.token,
            "chosen_logprob": at.logprob,
            "own_top": dict(_top_n(at.top, 5)),
            "before": clip("".join(t.token for t in endpoint[max(0, bad[0] - 10) : bad[0]]), 80),
        }
    return len(bad) / judged, evidence


def _divergence(
    endpoint: Sequence[TokenLogprob],
    reference: Sequence[TokenLogprob],
    at: int | None,
    min_gap: float,
) -> tuple[dict[str, Any] | None, bool]:
    if at is None:
        return None, False
    e = endpoint[at] if at < len(endpoint) else None
    r = reference[at] if at < len(reference) else None
    ref_logprobs = _logprobs(r) if r is not None else {}
    best = top1(r) if r is not None else None
    gap: float | None = None
    if e is not None and best is not None and best in ref_logprobs:
        # A chosen token missing from the reference's top-k is at most as likely as the least
        # likely one shown, so the gap is at least best − min(shown).
        chosen = ref_logprobs.get(e.token, min(ref_logprobs.values()))
        gap = ref_logprobs[best] - chosen
    confident = gap is not None and gap >= min_gap
    evidence = {
        "index": at,
        "endpoint_token": e.token if e is not None else None,
        "reference_top1": best,
        "reference_gap_nats": gap,
        "endpoint_top": dict(_top_n(e.top, 5)) if e is not None else {},
        "reference_top": dict(_top_n(r.top, 5)) if r is not None else {},
        "before": clip("".join(t.token for t in endpoint[max(0, at - 10) : at]), 80),
    }
    return evidence, bool(confident)


def _finite_top(position: TokenLogprob) -> dict[str, float]:
    """The alternatives with a finite logprob (the others are missing, not evidence)."""
    top = position.top or {}
    if all(type(v) is float and math.isfinite(v) for v in top.values()):
        return top
    return {k: value for k, v in top.items() if (value := finite_logprob(v)) is not None}


def _logprobs(position: TokenLogprob) -> dict[str, float]:
    """Every finite logprob a position carries: its top-k plus the chosen token's."""
    known = dict(_finite_top(position))
    chosen = finite_logprob(position.logprob)
    if chosen is not None:
        known.setdefault(position.token, chosen)
    return known


def _top_n(top: dict[str, float], n: int) -> list[tuple[str, float]]:
    finite = [(k, v) for k, v in top.items() if finite_logprob(v) is not None]
    return sorted(finite, key=lambda item: item[1], reverse=True)[:n]


def _logsumexp(values: list[float]) -> float:
    peak = max(values)
    return peak + math.log(sum(math.exp(v - peak) for v in values))
