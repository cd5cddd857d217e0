"""Offending spans in evidence: one shape for every per-output detector, so reports and
`canary detect` show where the problem is without knowing which detector found it.

A span is stored as ``{"start", "end", "text", "what"}`` with offsets into the output; the
explanation reads them back, keeping only those that still index the text it is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from canary.detectors.base import clip
from canary.detectors.metrics import EvidenceView, Explanation, Span

#: Most spans kept in one score's evidence; counts cover all of them.
MAX_SPANS = 10


def span(text: str, start: int, end: int, what: str) -> dict[str, Any]:
    """One stored span of ``text``."""
    return {"start": start, "end": end, "text": clip(text[start:end], 80), "what": what}


def spans_evidence(
    text: str, found: Iterable[tuple[int, int, str]], **facts: Any
) -> dict[str, Any]:
    """Evidence holding the first `MAX_SPANS` of ``found`` (start, end, what) and ``facts``."""
    found = sorted(found)
    return {
        **facts,
        "spans": [span(text, s, e, w) for s, e, w in found[:MAX_SPANS]],
        "spans_total": len(found),
    }


def stored_spans(kind: str) -> Callable[[EvidenceView], list[Span]]:
    """An `Explanation.spans` reader for evidence made by `spans_evidence`."""

    def read(view: EvidenceView) -> list[Span]:
        out = []
        for s in (view.located or {}).get("spans", []):
            start, end = s.get("start"), s.get("end")
            if (
                isinstance(start, int)
                and isinstance(end, int)
                and 0 <= start < end <= len(view.text)
            ):
                out.append(Span(start, end, kind, str(s.get("what", kind))))
        return out

    return read


def explained(kind: str, facts: tuple[str, ...] = ()) -> Explanation:
    """The explanation of a metric whose evidence is `spans_evidence`: spans and facts."""

    def detail(view: EvidenceView) -> dict[str, Any]:
        ev: Mapping[str, Any] = view.evidence or {}
        return {k: ev.get(k) for k in facts if k in ev}

    return Explanation(
        spans=stored_spans(kind),
        detail=detail,
        severity=lambda ev: float(ev.get("spans_total") or 0),
    )
