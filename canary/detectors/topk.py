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

Both sides must use the same tokenizer; tokens are compared by their bytes (see
`canary.detectors.alignment`): a token that ends inside a character is ``""`` on one server,
``"\ufffd"`` on the reference and a byte list on a third, and those spellings are never compared as
text. Top-k lookups use `token_key`; an ambiguous key is not evidence either way. Endpoints that
return no logprobs are compared on their tokens, or on the text when they return no tokens either.

A missing logprob is not evidence. A chosen-token logprob of None (the endpoint sent none, or
sent NaN/±Infinity/a non-number, which the adapters and the store turn into None) and any
alternative whose logprob is not a finite number are ignored: the logprob metrics skip such a
position, and a metric with no position left to judge is None (not scorable), never 0 or a flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from canary.detectors import topk_evidence as shown
from canary.detectors.alignment import Spelling
from canary.detectors.base import GroupDetector, Score, clip
from canary.detectors.metrics import Bins, Explanation, Metric, continuous, rate
from canary.detectors.registry import register_detector
from canary.detectors.topk_positions import (
    TIE_TOLERANCE,
    Aligned,
    finite_top,
    logprob_gap,
    reference_logprob_of,
    shared_topk_kl,
    top1,
    top_n,
)
from canary.detectors.topk_text import (
    common_prefix_length,
    text_divergence,
    text_prefix_agreement,
)
from canary.records import TokenLogprob, finite_logprob

__all__ = [
    "DEFAULT_MIN_GAP_NATS",
    "TopkAgreement",
    "compare_to_reference",
    "first_divergence",
    "greedy_not_argmax",
    "logprob_gap",
    "shared_topk_kl",
    "top1",
    "top1_agreement",
]

#: A greedy endpoint that passes over a reference top-1 the reference preferred by at least this
#: many nats (a factor e^0.5 ≈ 1.65) is flagged. Near-ties, like honest bf16 rounding (gaps of
#: ~0.01 nats), are measured in the agreement rates but never flagged.
DEFAULT_MIN_GAP_NATS = 0.5


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
    version: ClassVar[str] = "3"
    """3: tokens are compared by their bytes, so partial-character tokens no longer diverge."""
    kinds: ClassVar[frozenset[str]] = frozenset({"topk", "routing"})
    reference: ClassVar[bool] = True
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "first_divergence",
            0.005,
            critical=True,
            relative_margin=0.5,
            reason="a greedy output that leaves the reference on 0.5% more probes (or half again "
            "its base rate) is a numerics change users see; smaller moves are bf16 noise",
            explain=Explanation(
                spans=lambda v: shown.divergence_span(v.text, v.tokens, v.located),
                detail=lambda v: shown.divergence_detail(v.tokens, v.evidence),
                lines=shown.divergence_lines,
                severity=lambda ev: float(ev.get("reference_gap_nats") or 0.0),
            ),
        ),
        rate(
            "greedy_not_argmax",
            0.003,
            critical=True,
            reason="any rise is a sampler bug; 0.3% is the smallest rise 4,000 clean probes "
            "rule out with an anytime-valid test at α = 0.05",
            explain=Explanation(
                spans=lambda v: shown.not_argmax_span(v.text, v.tokens, v.located),
                detail=lambda v: shown.not_argmax_detail(v.evidence),
            ),
        ),
        continuous(
            "top1_agreement",
            0.02,
            Bins(0.0, 1.0, 100),
            "lower_is_worse",
            reason="bf16 near-ties cost about 1% agreement against fp32; 2% more is numerics",
        ),
        continuous(
            "mean_logprob_gap",
            0.05,
            Bins(0.0, 10.0, 200),
            reason="0.05 nats is above bf16 rounding of log-probs, below a visible change",
        ),
        continuous(
            "mean_shared_kl",
            0.02,
            Bins(0.0, 4.0, 200),
            reason="0.02 nats of KL is above bf16 rounding, below a visible change",
        ),
    )


def top1_agreement(
    endpoint: Sequence[TokenLogprob],
    reference: Sequence[TokenLogprob],
    endpoint_text: str | None = None,
    reference_text: str | None = None,
) -> list[bool | None]:
    """Per aligned position: did the endpoint choose the reference's top-1 token?

    Compared by bytes; None where that cannot be known (a partial token spelled ``""`` whose
    bytes the text does not give back).
    """
    return Aligned.of(endpoint, reference, endpoint_text, reference_text).agreement()


def first_divergence(
    agreement: Sequence[bool | None], endpoint_len: int, reference_len: int
) -> int | None:
    """First disagreeing position; the shorter length when one side stops early; else `None`.

    An unknown position (None) is not a divergence."""
    for index, agrees in enumerate(agreement):
        if agrees is False:
            return index
    return None if endpoint_len == reference_len else min(endpoint_len, reference_len)


def compare_to_reference(
    endpoint: Sequence[TokenLogprob] | None,
    reference: Sequence[TokenLogprob] | None,
    endpoint_text: str | None = None,
    reference_text: str | None = None,
    min_gap: float = DEFAULT_MIN_GAP_NATS,
) -> TopkAgreement:
    """Everything above in one value, using the richest data both sides have.

    For greedy probes: ``min_gap`` (nats) is how strongly the reference must prefer its top-1
    for a divergence to be flagged. The texts let partial tokens be spelled as bytes.
    """
    if not endpoint or not reference:
        return _compare_text(endpoint_text or "", reference_text or "", reference or (), min_gap)
    aligned = Aligned.of(endpoint, reference, endpoint_text, reference_text)
    agreement = aligned.agreement()
    judged = [a for a in agreement if a is not None]
    divergence_at = first_divergence(agreement, len(endpoint), len(reference))
    divergence, confident = _divergence(aligned, divergence_at, endpoint_text, min_gap)
    parted = next((i for i, same in enumerate(aligned.same) if same is False), None)
    common = parted if parted is not None else min(len(endpoint), len(reference))
    base = TopkAgreement(
        method="tokens",
        positions=len(agreement),
        top1_agreement=sum(judged) / len(judged) if judged else None,
        first_divergence=divergence_at,
        prefix_agreement=common / len(reference),
        divergence=divergence,
        confident_divergence=confident,
    )
    if not any(finite_top(e) or finite_logprob(e.logprob) is not None for e in endpoint):
        return base
    gaps = [g for i in aligned.pairs() if (g := aligned.gap(i)) is not None]
    kls = [k for i in aligned.pairs() if (k := aligned.kl(i)) is not None]
    hits = [h for i in aligned.pairs() if (h := aligned.in_topk(i)) is not None]
    not_argmax, not_argmax_evidence = greedy_not_argmax(endpoint, endpoint_text, aligned.e)
    return dataclasses.replace(
        base,
        method="logprobs",
        not_argmax=not_argmax,
        not_argmax_evidence=not_argmax_evidence,
        ref_top1_in_topk=sum(hits) / len(hits) if hits else None,
        mean_logprob_gap=sum(gaps) / len(gaps) if gaps else None,
        max_logprob_gap=max(gaps) if gaps else None,
        mean_kl=sum(kls) / len(kls) if kls else None,
        max_kl=max(kls) if kls else None,
    )


def _compare_text(
    endpoint_text: str,
    reference_text: str,
    reference: Sequence[TokenLogprob],
    min_gap: float,
) -> TopkAgreement:
    """Text against text; flagged only where the reference's own top-k at the divergence shows
    it preferred its token by ≥ `min_gap` nats (see `canary.detectors.topk_text`)."""
    prefix = common_prefix_length(endpoint_text, reference_text)
    same = endpoint_text == reference_text
    divergence: dict[str, Any] | None = None
    confident = False
    if not same:
        divergence = {
            "index": prefix,
            "offset": prefix,
            "endpoint": clip(endpoint_text[prefix : prefix + 40], 40),
            "reference": clip(reference_text[prefix : prefix + 40], 40),
            "before": endpoint_text[max(0, prefix - 40) : prefix],
        }
        seen = text_divergence(endpoint_text, reference) if reference else None
        if seen is not None:
            divergence |= {
                "reference_position": seen.position,
                "endpoint_alternative": seen.endpoint_token,
                "reference_gap_nats": seen.gap_nats,
                "gap_is_lower_bound": seen.lower_bound,
                "reference_top": dict(top_n(reference[seen.position].top, 5)),
            }
            confident = seen.gap_nats >= min_gap
    return TopkAgreement(
        method="text",
        positions=0,
        first_divergence=None if same else prefix,
        prefix_agreement=text_prefix_agreement(endpoint_text, reference_text),
        divergence=divergence,
        confident_divergence=confident,
    )


def greedy_not_argmax(
    endpoint: Sequence[TokenLogprob],
    text: str | None = None,
    spelling: Spelling | None = None,
) -> tuple[float | None, dict[str, Any] | None]:
    """Share of positions whose chosen token is below the best of the endpoint's own top-k.

    Needs no reference: at temperature 0 a correct sampler always takes its own argmax, so a
    chosen token that its own logprobs rank lower means the sampler dropped the top token.
    ``None`` when the endpoint returned no alternatives. Partial tokens colliding on one ``""``
    key keep one of their logprobs, never more than the best, so they cannot raise a false flag.
    """
    judged = 0
    bad: list[int] = []
    for index, position in enumerate(endpoint):
        top = finite_top(position)
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
            "chosen": spelling.key(bad[0], at) if spelling is not None else at.token,
            "chosen_logprob": at.logprob,
            "own_top": dict(top_n(at.top, 5)),
            **_located(endpoint, text, spelling, bad[0]),
        }
    return len(bad) / judged, evidence


def _divergence(
    aligned: Aligned, at: int | None, text: str | None, min_gap: float
) -> tuple[dict[str, Any] | None, bool]:
    if at is None:
        return None, False
    endpoint, reference = aligned.endpoint, aligned.reference
    e = endpoint[at] if at < len(endpoint) else None
    r = reference[at] if at < len(reference) else None
    r_keyed = aligned.r_keyed(at) if r is not None else None
    best = aligned.best(at) if r is not None else None
    e_key = aligned.e.key(at, e) if e is not None else None
    gap: float | None = None
    if e is not None and r_keyed is not None and best is not None and best.key in r_keyed.known:
        known_key = e_key if aligned.e.exact[at] is not None else None
        chosen = reference_logprob_of(r_keyed, known_key)
        if chosen is not None and best.key is not None:
            gap = r_keyed.known[best.key] - chosen
    confident = gap is not None and gap >= min_gap
    e_keyed = aligned.e_keyed(at) if e is not None else None
    evidence = {
        "index": at,
        "endpoint_token": e_key,
        "endpoint_logprob": finite_logprob(e.logprob) if e is not None else None,
        "reference_top1": best.key if best is not None else None,
        "reference_gap_nats": gap,
        "endpoint_top": dict(top_n(e_keyed.known, 5)) if e_keyed is not None else {},
        "reference_top": dict(top_n(r_keyed.known, 5)) if r_keyed is not None else {},
        **_located(endpoint, text, aligned.e, at),
    }
    return evidence, bool(confident)


def _located(
    tokens: Sequence[TokenLogprob], text: str | None, spelling: Spelling | None, at: int
) -> dict[str, Any]:
    """Where position `at` is in the text (its character segment) and the text before it."""
    offset = spelling.char_offset(at) if spelling is not None else None
    segment = spelling.segment(at) if spelling is not None else None
    if text is None or offset is None or segment is None or offset > len(text):
        return {"before": clip("".join(t.token for t in tokens[max(0, at - 10) : at]), 80)}
    return {
        "offset": offset,
        "length": segment.chars,
        "before": clip(text[max(0, offset - 40) : offset], 80),
    }
