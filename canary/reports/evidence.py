"""The worst flagged outputs behind each regressed cell, each with its offending span.

Candidates are the firing alert's evidence ids (what the daemon kept, and retention protects),
else the cell's flagged results in the window. They are ranked by how bad the detector said
they were (more foreign characters, a more confident divergence), so the first sample shown is
the clearest one, not merely the oldest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canary.compare.aggregate import CohortData
from canary.detectors.metrics import EvidenceView, Explanation
from canary.records import ResultFilter
from canary.reports.model import Cell, EvidenceSample, Span
from canary.stats import MetricPolicy
from canary.store import Store, StoredResult

#: Characters of context kept on each side of the first span in a long output.
CONTEXT_CHARS = 160
#: Outputs up to this long are shown whole.
WHOLE_OUTPUT_CHARS = 480
CANDIDATES_PER_CELL = 20


def collect_evidence(
    store: Store,
    cells: Sequence[Cell],
    alert_evidence: Mapping[int, Sequence[int]],
    cohorts: Mapping[str, CohortData],
    window: ResultFilter,
    policies: Mapping[str, MetricPolicy],
    per_cell: int = 3,
) -> list[EvidenceSample]:
    """Up to ``per_cell`` samples for each regressed cell, worst first."""
    from canary.compare.run import evidence_ids

    samples: list[EvidenceSample] = []
    for cell in cells:
        if cell.status != "regressed":
            continue
        ids = [i for a in cell.alert_ids for i in alert_evidence.get(a, [])]
        if not ids:
            ids = evidence_ids(
                store,
                window,
                cohorts.get(cell.cohort),
                cell.metric,
                policies,
                limit=CANDIDATES_PER_CELL,
            )
        found = _fetch(store, list(dict.fromkeys(ids))[:CANDIDATES_PER_CELL])
        ranked = sorted(found, key=lambda r: (-_severity(r, cell.metric), r.id))
        samples += [sample(r, cell.cohort, cell.metric) for r in ranked[:per_cell]]
    return samples


def sample(result: StoredResult, cohort: str, metric: str) -> EvidenceSample:
    """One result as evidence of ``metric``: the located spans and the metric's facts."""
    evidence = _evidence(result, metric)
    text, source = result.output_text, "evidence"
    if text is None:  # pruned, or the request failed: show what the evidence kept
        text, source = _context(evidence) or f"<{result.error_kind or 'pruned'}>", "context"
    # Stored offsets index the raw output; on a pruned output's context only searches work.
    located = evidence if source == "evidence" else None
    explain = _explanation(metric)
    view = EvidenceView(
        text=text,
        evidence=evidence,
        located=located,
        tokens=result.tokens,
        prompt=result.request.get("prompt"),
        error_kind=result.error_kind,
        error_detail=result.error_detail,
    )
    spans = [Span(*s) for s in explain.spans(view)] if explain.spans else []
    if evidence is None and spans:
        source = "output"  # found by scanning the output itself
    detail: dict[str, Any] = explain.detail(view) if explain.detail else {}
    shown, offset, spans = _window(text, spans)
    return EvidenceSample(
        result_id=result.id,
        cohort=cohort,
        metric=metric,
        probe_id=result.probe_id,
        endpoint=result.endpoint,
        started_at=result.started_at,
        text=shown,
        text_offset=offset,
        spans=spans,
        detail=detail,
        source=source,
    )


def _window(text: str, spans: list[Span]) -> tuple[str, int, list[Span]]:
    """A long output cut around its first span; spans shifted to the cut text."""
    if len(text) <= WHOLE_OUTPUT_CHARS:
        return text, 0, spans
    first = min((s.start for s in spans), default=0)
    start = max(0, first - CONTEXT_CHARS)
    end = min(len(text), max(start + WHOLE_OUTPUT_CHARS, first + CONTEXT_CHARS))
    kept = [
        Span(s.start - start, min(s.end, end) - start, s.kind, s.note)
        for s in spans
        if start <= s.start < end
    ]
    return text[start:end], start, kept


def _evidence(result: StoredResult, metric: str) -> dict[str, Any] | None:
    for score in result.scores:
        if score.metric == metric:
            return score.evidence
    return None


def _context(evidence: Mapping[str, Any] | None) -> str | None:
    ev = evidence or {}
    for s in ev.get("spans", []) or ev.get("reasons", []):
        if s.get("context"):
            return str(s["context"])
    return str(ev["line_text"]) if ev.get("line_text") else None


def _explanation(metric: str) -> Explanation:
    """How the detector that declares ``metric`` explains its evidence (nothing if none does)."""
    from canary.detectors import declared_metrics

    declared = declared_metrics().get(metric)
    return declared.explain if declared is not None else Explanation()


def _severity(result: StoredResult, metric: str) -> float:
    """How bad the detector said this output was, comparable within one metric."""
    severity = _explanation(metric).severity
    if severity is not None:
        return severity(_evidence(result, metric) or {})
    for score in result.scores:
        if score.metric == metric and score.value is not None:
            return float(score.value)
    return 0.0


def _fetch(store: Store, ids: Sequence[int]) -> list[StoredResult]:
    if not ids:
        return []
    from canary.store.models import ResultRow
    from canary.store.views import fetch_results

    with store.engine.connect() as conn:
        return fetch_results(conn, [ResultRow.id.in_(list(ids))])
