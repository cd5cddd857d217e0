"""How strongly the reference preferred its own token where an endpoint's *text* diverged.

An endpoint that returns no logprobs (a hosted API, `transformers serve`, llama.cpp without
`n_probs`) still returns text. Where that text leaves the reference's greedy output, the
reference's own top-k at that position says whether the endpoint took a near-tie (honest
rounding: not evidence) or a token the reference all but ruled out (a misconfigured sampler, a
corrupt kernel). The endpoint's token is read off its text: the reference alternative whose bytes
the endpoint's text continues with. Compared by bytes, so partial UTF-8 tokens take part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from canary.detectors.alignment import key_bytes, own_bytes
from canary.records import TokenLogprob, finite_logprob

#: Reference positions before the one holding the divergence that may hold the endpoint's token
#: (a longer token than the reference's, e.g. "then" where the reference chose "the").
_LOOK_BACK = 3


@dataclass(frozen=True, slots=True)
class TextDivergence:
    """The reference's view of the first byte where the endpoint's text differs."""

    position: int
    """Reference token index where the endpoint's token starts."""
    endpoint_token: str | None
    """The reference alternative the endpoint's text continues with; None if outside top-k."""
    gap_nats: float
    """Reference logprob of its top-1 minus that of the endpoint's token (a lower bound when the
    endpoint's token is outside the reference's top-k)."""
    lower_bound: bool


def text_divergence(endpoint_text: str, reference: Sequence[TokenLogprob]) -> TextDivergence | None:
    """Where and how confidently the reference disagrees with `endpoint_text`; None when the
    texts agree, when the reference's bytes are unknown, or when nothing can be said."""
    spans = _byte_spans(reference)
    if spans is None:
        return None
    ref_bytes = b"".join(own_bytes(t) or b"" for t in reference)
    end_bytes = endpoint_text.encode("utf-8")
    diverge = _common_prefix(ref_bytes, end_bytes)
    if diverge == len(ref_bytes) and diverge == len(end_bytes):
        return None
    if diverge >= len(ref_bytes) or diverge >= len(end_bytes):
        return None  # one side stopped (eos, a stop sequence): not a token choice seen here
    holding = next(j for j, (start, end) in enumerate(spans) if start <= diverge < end)
    for j in range(holding, max(-1, holding - _LOOK_BACK - 1), -1):
        found = _alternative_at(reference[j], end_bytes, spans[j][0], diverge)
        if found is not None:
            key, logprob = found
            top1 = _top1(reference[j])
            if top1 is None:
                return None
            return TextDivergence(j, key, max(0.0, top1 - logprob), lower_bound=False)
    position = reference[holding]
    top1 = _top1(position)
    values = [v for v in position.top.values() if finite_logprob(v) is not None]
    if top1 is None or not values:
        return None
    return TextDivergence(holding, None, max(0.0, top1 - min(values)), lower_bound=True)


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


def _byte_spans(reference: Sequence[TokenLogprob]) -> list[tuple[int, int]] | None:
    spans: list[tuple[int, int]] = []
    offset = 0
    for token in reference:
        raw = own_bytes(token)
        if raw is None:
            return None
        spans.append((offset, offset + len(raw)))
        offset += len(raw)
    return spans


def _common_prefix(a: bytes, b: bytes) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def _top1(position: TokenLogprob) -> float | None:
    values = [v for v in position.top.values() if finite_logprob(v) is not None]
    chosen = finite_logprob(position.logprob)
    best = max(values, default=None)
    if chosen is not None and (best is None or chosen > best):
        return chosen
    return best


def _alternative_at(
    position: TokenLogprob, endpoint: bytes, start: int, diverge: int
) -> tuple[str, float] | None:
    """The likeliest alternative other than the reference's choice that the endpoint's bytes
    continue with from `start` and that reaches past the divergence."""
    chosen = own_bytes(position)
    best: tuple[str, float] | None = None
    for key, value in position.top.items():
        raw = key_bytes(key)
        logprob = finite_logprob(value)
        if raw is None or logprob is None or raw == chosen:
            continue
        reaches = endpoint.startswith(raw, start) and start + len(raw) > diverge
        if reaches and (best is None or logprob > best[1]):
            best = (key, logprob)
    return best
