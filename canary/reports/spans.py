"""Locating the offending part of an output from a detector's stored evidence.

Offsets are Python string indices (code points), the unit the detectors stored them in, so a
renderer highlights ``text[start:end]`` and nothing else. Each locator trusts the stored
evidence first and checks it against the raw output; when the evidence carries no offsets it
re-derives them from the raw output (scripts), or from the tokens (divergences).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canary.records import TokenLogprob
from canary.reports.model import Span


def script_spans(text: str, evidence: Mapping[str, Any] | None) -> list[Span]:
    """Characters of unexpected scripts: the detector's spans, else a fresh scan of ``text``."""
    spans = []
    for s in (evidence or {}).get("spans", []):
        start, end = int(s.get("start", -1)), int(s.get("end", -1))
        if 0 <= start < end <= len(text):
            spans.append(Span(start, end, "unexpected_script", f"{s.get('script', '?')} script"))
    if spans or not text:
        return spans
    from canary.detectors.script import DEFAULT_SCRIPTS, unexpected_pattern

    pattern = unexpected_pattern(frozenset(DEFAULT_SCRIPTS))
    return [
        Span(m.start(), m.end(), "unexpected_script", "outside Latin/Common")
        for m in pattern.finditer(text)
    ][:10]


def mojibake_spans(text: str, evidence: Mapping[str, Any] | None) -> list[Span]:
    """The first replacement, control or mis-decoded character the detector reported."""
    spans = []
    for reason in (evidence or {}).get("reasons", []):
        at = reason.get("offset")
        if isinstance(at, int) and 0 <= at < len(text):
            spans.append(Span(at, at + 1, "mojibake", str(reason.get("reason", "mojibake"))))
    return spans


def syntax_span(text: str, evidence: Mapping[str, Any] | None, prompt: str | None) -> list[Span]:
    """The character (or word) where the parser stopped, in the output's own offsets.

    The detector reports a 1-based line and column inside the code block it parsed: a fence
    body (starting at ``offset`` in the output), the whole output, or prompt + output for a
    completion, whose prompt lines come first.
    """
    ev = evidence or {}
    line, column = ev.get("line"), ev.get("column")
    if not text or not isinstance(line, int) or line < 1:
        return []
    if ev.get("source") == "fence":
        base = int(ev.get("offset") or 0)
        code = text[base:]
    elif ev.get("source") == "completion" and prompt:
        base, code = -len(prompt), prompt + text
    else:
        base, code = 0, text
    lines = code.split("\n")
    if line > len(lines):
        return []
    line_start = sum(len(x) + 1 for x in lines[: line - 1])
    col = max(0, min(int(column or 1) - 1, max(len(lines[line - 1]) - 1, 0)))
    at = base + line_start + col
    if at >= len(text):
        at = len(text) - 1
    if at < 0:
        return []  # the error is in the prompt part of a completion
    end = at + 1
    while end < len(text) and text[at].isalnum() and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return [Span(at, end, "syntax_error", str(ev.get("error", "syntax error")))]


def token_offset(tokens: Sequence[TokenLogprob] | None, text: str, index: int) -> int | None:
    """Character offset of token ``index`` in ``text`` when the tokens spell the text exactly."""
    if not tokens or "".join(t.token for t in tokens) != text or index > len(tokens):
        return None
    return sum(len(t.token) for t in tokens[:index])


def divergence_span(
    text: str, tokens: Sequence[TokenLogprob] | None, evidence: Mapping[str, Any] | None
) -> list[Span]:
    """The endpoint's token at the first divergence from the reference."""
    ev = evidence or {}
    index = ev.get("index")
    if not isinstance(index, int):
        return []
    if "endpoint_token" not in ev:  # compared as text: the index is a character offset
        at, length = index, 1
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
    at = token_offset(tokens, text, index)
    if at is None:
        at = _after(text, str(ev.get("before") or ""), chosen)
    if at is None or at >= len(text):
        return []
    return [Span(at, min(at + len(chosen), len(text)), "not_argmax", "below its own top-1")]


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
