"""Per-position lookups of the topk detector, by comparable key (`token_key`).

Each position's top-k is read through `alignment.keyed`: keys that name bytes are compared,
ambiguous keys (``""``, ``"\ufffd"``) only stand in as "some partial token" and never match a
particular token, except by an equal logprob. A lookup that cannot be decided is None (not
evidence), never a miss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from canary.detectors.alignment import (
    SAME_LOGPROB,
    Keyed,
    Spelling,
    key_bytes,
    keyed,
    own_bytes,
    partial_key,
    refine,
    same_tokens,
    spell,
)
from canary.records import TokenLogprob, finite_logprob, token_key

#: Logprobs this close count as tied when checking that a greedy token is its own argmax.
TIE_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class Best:
    """A reference position's top-1: its comparable key (None when ambiguous) and logprob."""

    key: str | None
    logprob: float | None
    own: bool
    """The top-1 is the reference's own chosen token (always so for a greedy reference)."""


def reference_best(position: TokenLogprob, own: bytes | None) -> Best:
    """The reference's most likely token at a position, keyed like the endpoint's."""
    top = finite_top(position)
    chosen = finite_logprob(position.logprob)
    own_key = token_key(position.token, own) if own is not None else None
    if not top:
        return Best(own_key, chosen, True)
    best_raw, best_lp = max(top.items(), key=lambda item: item[1])
    if (chosen is not None and chosen >= best_lp - TIE_TOLERANCE) or (
        chosen is None and best_raw == position.token
    ):
        return Best(own_key, best_lp, True)
    raw = key_bytes(best_raw)
    return Best(token_key(best_raw, raw) if raw is not None else None, best_lp, False)


@dataclass(frozen=True)
class Aligned:
    """Both sides spelled as bytes, with per-position keyed logprobs."""

    endpoint: Sequence[TokenLogprob]
    reference: Sequence[TokenLogprob]
    e: Spelling
    r: Spelling
    same: list[bool | None]
    """Per position: the same chosen token on both sides, or unknown (None)."""

    @classmethod
    def of(
        cls,
        endpoint: Sequence[TokenLogprob],
        reference: Sequence[TokenLogprob],
        endpoint_text: str | None = None,
        reference_text: str | None = None,
    ) -> Aligned:
        e, r = spell(endpoint, endpoint_text), spell(reference, reference_text)
        e = refine(endpoint, e, reference, r)
        r = refine(reference, r, endpoint, e)
        return cls(endpoint, reference, e, r, same_tokens(e, r, len(endpoint), len(reference)))

    def pairs(self) -> range:
        return range(len(self.same))

    def e_keyed(self, i: int) -> Keyed:
        return keyed(self.endpoint[i], self.e.exact[i])

    def r_keyed(self, i: int) -> Keyed:
        return keyed(self.reference[i], self.r.exact[i])

    def best(self, i: int) -> Best:
        return reference_best(self.reference[i], self.r.exact[i])

    def agreement(self) -> list[bool | None]:
        """Per position: did the endpoint choose the reference's top-1 (None: unknown)?"""
        out: list[bool | None] = []
        for i in self.pairs():
            best = self.best(i)
            if best.own:
                out.append(self.same[i])
            elif best.key is None or self.e.exact[i] is None:
                out.append(None)
            else:
                out.append(self.e.key(i, self.endpoint[i]) == best.key)
        return out

    def in_topk(self, i: int) -> bool | None:
        """Whether the reference top-1 is among the endpoint's returned top-k (None: unknown)."""
        if not finite_top(self.endpoint[i]):
            return None
        return in_topk(self.e_keyed(i), self.best(i))

    def gap(self, i: int) -> float | None:
        return logprob_gap_keyed(self.e_keyed(i), self.best(i))

    def kl(self, i: int) -> float | None:
        return shared_kl(self.e_keyed(i), self.r_keyed(i))


def in_topk(endpoint: Keyed, best: Best) -> bool | None:
    if best.key is None:
        return None
    if best.key in endpoint.known:
        return True
    if not endpoint.ambiguous:
        return False
    if best.logprob is not None and any(
        abs(v - best.logprob) <= SAME_LOGPROB for v in endpoint.ambiguous
    ):
        return True
    return None if partial_key(best.key) else False


def logprob_gap_keyed(endpoint: Keyed, best: Best) -> float | None:
    """Endpoint top-1 logprob minus the endpoint's logprob of the reference top-1 (≥ 0)."""
    if best.key is None or best.key not in endpoint.known:
        return None
    return max([*endpoint.known.values(), *endpoint.ambiguous]) - endpoint.known[best.key]


def shared_kl(endpoint: Keyed, reference: Keyed) -> float | None:
    """KL(reference ‖ endpoint) in nats over the keys both hold, renormalised."""
    ref, end = reference.known, endpoint.known
    shared = [t for t in ref if t in end]
    if not shared:
        return None
    ref_norm = logsumexp([ref[t] for t in shared])
    end_norm = logsumexp([end[t] for t in shared])
    kl = 0.0
    for t in shared:
        log_p = ref[t] - ref_norm
        kl += math.exp(log_p) * (log_p - (end[t] - end_norm))
    return max(0.0, kl)


def reference_logprob_of(reference: Keyed, key: str | None) -> float | None:
    """The reference's logprob of the endpoint's token, a cautious bound, or None.

    A token missing from the reference's top-k is at most as likely as the least likely one
    shown. A token that is part of a character (or whose bytes are unknown) may hide behind a
    key several partial tokens collided on: then it cannot be told (None, not evidence); where
    its bytes are unknown the likeliest partial key stands in, so a gap is never overstated.
    """
    values = [*reference.known.values(), *reference.ambiguous]
    if not values:
        return None
    if key is not None and key in reference.known:
        return reference.known[key]
    bound = min(values)
    if key is not None and not partial_key(key):
        return bound
    if reference.collapsed:
        return None
    if key is None:
        return max([bound, *(v for k, v in reference.known.items() if partial_key(k))])
    return bound


def top1(position: TokenLogprob) -> str:
    """The most likely token at a position: the best of ``top``, else the chosen token."""
    top = finite_top(position)
    if top:
        return max(top.items(), key=lambda item: item[1])[0]
    return position.token


def logprob_gap(endpoint: TokenLogprob, reference: TokenLogprob) -> float | None:
    """Endpoint top-1 logprob minus the endpoint's logprob of the reference top-1.

    0 when the endpoint ranks the reference's choice first; `None` when the endpoint did not
    return a logprob for that token (it fell out of the returned top-k) or it cannot be told.
    """
    best = reference_best(reference, own_bytes(reference))
    return logprob_gap_keyed(keyed(endpoint, own_bytes(endpoint)), best)


def shared_topk_kl(endpoint: TokenLogprob, reference: TokenLogprob) -> float | None:
    """KL(reference ‖ endpoint) in nats over the tokens both top-k lists hold, renormalised.

    `None` when the lists share no token; 0 when they share one (nothing to compare).
    """
    return shared_kl(keyed(endpoint, own_bytes(endpoint)), keyed(reference, own_bytes(reference)))


def finite_top(position: TokenLogprob) -> dict[str, float]:
    """The alternatives with a finite logprob (the others are missing, not evidence)."""
    top = position.top or {}
    if all(type(v) is float and math.isfinite(v) for v in top.values()):
        return top
    return {k: value for k, v in top.items() if (value := finite_logprob(v)) is not None}


def top_n(top: dict[str, float], n: int) -> list[tuple[str, float]]:
    finite = [(k, v) for k, v in top.items() if finite_logprob(v) is not None]
    return sorted(finite, key=lambda item: item[1], reverse=True)[:n]


def logsumexp(values: list[float]) -> float:
    peak = max(values)
    return peak + math.log(sum(math.exp(v - peak) for v in values))
