"""How a token-level divergence from the reference is shown: the token, both models' logprobs.

Offsets are Python string indices (code points), the unit the detectors store them in. The
stored evidence is trusted first and checked against the raw output; when it carries no offsets
they are re-derived from the endpoint's tokens, spelled as bytes (a token that ends inside a
character is shown as the whole character segment it belongs to).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canary.detectors.alignment import spell
from canary.detectors.metrics import Span
from canary.records import TokenLogprob


def token_offset(tokens: Sequence[TokenLogprob] | None, text: str, index: int) -> int | None:
    """Character offset of token ``index`` in ``text`` when the tokens spell the text."""
    if not tokens or index > len(tokens):
        return None
    if "".join(t.token for t in tokens) == text:
        return sum(len(t.token) for t in tokens[:index])
    if index == len(tokens):
        return None
    return spell(tokens, text).char_offset(index)


def _stored_span(ev: Mapping[str, Any], text: str) -> tuple[int, int] | None:
    """The (offset, length) the detector stored, when it fits the text."""
    at, length = ev.get("offset"), ev.get("length")
    if type(at) is int and type(length) is int and 0 <= at < len(text) and length > 0:
        return at, length
    return None


def divergence_span(
    text: str, tokens: Sequence[TokenLogprob] | None, evidence: Mapping[str, Any] | None
) -> list[Span]:
    """The endpoint's token at the first divergence from the reference."""
    ev = evidence or {}
    index = ev.get("index")
    if not isinstance(index, int):
        return []
    stored = _stored_span(ev, text)
    if "endpoint_token" not in ev:  # compared as text: the index is a character offset
        at, length = index, 1
    elif stored is not None:
        at, length = stored
    else:
        chosen = ev.get("endpoint_token") or ""
        at_or_none = token_offset(tokens, text, index)
        if at_or_none is None:
            at_or_none = _after(text, str(ev.get("before") or ""), chosen)
        if at_or_none is None:
            return []
        at, length = at_or_none, len(chosen)
    if not 0 <= at < len(text) or length == 0:
        return []
    note = f"reference top-1: {ev.get('reference_top1', ev.get('reference', '?'))!r}"
    return [Span(at, min(at + length, len(text)), "divergence", note)]


def not_argmax_span(
    text: str, tokens: Sequence[TokenLogprob] | None, evidence: Mapping[str, Any] | None
) -> list[Span]:
    """The token a greedy endpoint chose below its own top-1."""
    ev = evidence or {}
    index, chosen = ev.get("index"), str(ev.get("chosen") or "")
    if not isinstance(index, int) or not chosen:
        return []
    stored = _stored_span(ev, text)
    if stored is not None:
        start, length = stored
        return [Span(start, min(start + length, len(text)), "not_argmax", "below its own top-1")]
    at = token_offset(tokens, text, index)
    if at is None:
        at = _after(text, str(ev.get("before") or ""), chosen)
    if at is None or at >= len(text):
        return []
    return [Span(at, min(at + len(chosen), len(text)), "not_argmax", "below its own top-1")]


def not_argmax_detail(evidence: Mapping[str, Any] | None) -> dict[str, Any]:
    """The chosen token, its logprob and the endpoint's own top alternatives."""
    keys = ("index", "chosen", "chosen_logprob", "own_top")
    return {k: evidence.get(k) for k in keys} if evidence else {}


def _after(text: str, before: str, token: str) -> int | None:
    """Where ``token`` follows ``before`` in ``text`` (evidence clipped ``before`` to 80)."""
    if before.endswith("…"):
        before = before[:-1]
    found = text.find(before + token) if before or token else -1
    return found + len(before) if found >= 0 else None


def divergence_detail(
    tokens: Sequence[TokenLogprob] | None, evidence: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Both tokens at the divergence and both models' logprobs of each."""
    ev = evidence or {}
    chosen, best = ev.get("endpoint_token"), ev.get("reference_top1")
    endpoint_top: dict[str, float] = dict(ev.get("endpoint_top") or {})
    reference_top: dict[str, float] = dict(ev.get("reference_top") or {})
    index = ev.get("index")
    chosen_logprob = endpoint_top.get(chosen) if chosen is not None else None
    at = tokens[index] if tokens and isinstance(index, int) and index < len(tokens) else None
    if at is not None and at.token == chosen and at.logprob is not None:
        chosen_logprob = at.logprob
    if isinstance(ev.get("endpoint_logprob"), int | float):
        chosen_logprob = float(ev["endpoint_logprob"])
    return {
        "position": index,
        "endpoint_token": chosen,
        "endpoint_logprob": chosen_logprob,
        "reference_logprob_of_endpoint_token": reference_top.get(chosen) if chosen else None,
        "reference_token": best,
        "reference_logprob": reference_top.get(best) if best is not None else None,
        "endpoint_logprob_of_reference_token": endpoint_top.get(best) if best else None,
        "reference_gap_nats": ev.get("reference_gap_nats"),
    }


def divergence_lines(d: Mapping[str, Any]) -> list[str]:
    """`divergence_detail` as two sentences."""
    return [
        f"position {d.get('position')}: endpoint chose {d.get('endpoint_token')!r} "
        f"(endpoint logprob {_lp(d.get('endpoint_logprob'))}, "
        f"reference logprob {_lp(d.get('reference_logprob_of_endpoint_token'))})",
        f"reference top-1 {d.get('reference_token')!r} "
        f"(reference logprob {_lp(d.get('reference_logprob'))}, "
        f"endpoint logprob {_lp(d.get('endpoint_logprob_of_reference_token'))}); "
        f"reference preferred it by {short(_f(d.get('reference_gap_nats')))} nats",
    ]


def short(value: float | None) -> str:
    """3 significant digits, scientific when tiny (the reports' number format)."""
    if value is None or value != value:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.3g}" if abs(value) >= 1e-3 else f"{value:.1e}"


def _lp(value: object) -> str:
    """A logprob, or where it is missing: the token fell outside that side's returned top-k."""
    return short(float(value)) if isinstance(value, int | float) else "below its top-k"


def _f(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
