"""Score arbitrary outputs with every applicable detector: triage of a reported bad answer.

`canary detect` reads JSON Lines, one output a row (``text``, and optionally ``prompt``,
``kind``, ``expect``, ``finish_reason``, ``id``), and says for each whether any detector flags
it, with the detector, metric, value and offending span. Nothing is stored: the rows never
went through the runner, so they have no endpoint, run or cohort.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from canary.detectors.base import Score, ScoringInput
from canary.detectors.metrics import EvidenceView, Metric
from canary.detectors.registry import build_detector, declared_metrics, result_detector_names
from canary.errors import ConfigError


class DetectRow(BaseModel):
    """One output to judge. Other fields (a source, a note, a label) are kept but not used."""

    model_config = ConfigDict(extra="allow", frozen=True)

    text: str
    """The output text."""
    prompt: str | None = None
    """What the model was asked (tokens and words the prompt holds are not leaks)."""
    kind: str = "generic"
    """The probe kind the output answers (``code`` for code, …); decides which detectors run."""
    expect: dict[str, Any] = {}
    """The probe's expectations, e.g. ``{"scripts": ["Han"]}`` for a Chinese answer."""
    finish_reason: str | None = None
    """``length`` when the output was cut at ``max_tokens``."""
    id: str | None = None
    """Shown with the verdict; defaults to the line number."""


@dataclass(frozen=True)
class Reason:
    """One flagged metric of one output."""

    detector: str
    metric: str
    value: float | None
    span: dict[str, Any] | None
    """The first offending span: ``start``, ``end`` (offsets into the text), ``text``, ``note``."""

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, "metric": self.metric, "value": self.value,
                "span": self.span}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What the detectors say about one row."""

    id: str
    line: int
    reasons: list[Reason] = field(default_factory=list)
    broken: bool | None = None
    """The row's own ``broken`` label, when it has one (a labelled corpus)."""

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "line": self.line, "flagged": self.flagged,
                "reasons": [r.to_dict() for r in self.reasons]}  # fmt: skip


def parse_rows(lines: Iterable[str], source: str) -> list[tuple[int, DetectRow]]:
    """(line number, row) of every non-blank line; `ConfigError` naming the first bad line."""
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source} line {number}: not JSON ({exc.msg}); write one JSON "
                              "object per line") from None  # fmt: skip
        if not isinstance(data, dict):
            raise ConfigError(f"{source} line {number}: a JSON object is needed, got "
                              f"{type(data).__name__}")  # fmt: skip
        try:
            rows.append((number, DetectRow.model_validate(data)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "row"
            raise ConfigError(f"{source} line {number}: {where}: {first['msg']}") from None
    return rows


Logprobs = Callable[[Sequence[tuple[str, str]]], list[list[float | None]]]
"""(prompt, output) pairs → the reference's logprob of each output token (teacher forcing)."""


def detect_rows(
    rows: Iterable[tuple[int, DetectRow]],
    special_tokens: tuple[str, ...] = (),
    source: str = "",
    logprobs: Logprobs | None = None,
) -> list[Verdict]:
    """The verdict of every row, in order. `ConfigError` names the line of a row whose
    ``kind`` or ``expect`` no detector can use.

    ``logprobs`` (a reference model's, `canary.reference.continuation_logprobs`) also runs the
    ``likelihood`` detector on every row that has a ``prompt``: the reference NLL needs what the
    model was asked, and a row without one is not judged by it.
    """
    from canary.probes.model import Probe

    rows = list(rows)
    nll_reasons = _likelihood_reasons(rows, logprobs) if logprobs is not None else {}
    detectors = [build_detector(name) for name in result_detector_names()]
    if special_tokens:
        detectors = [
            build_detector("special_tokens", tokens=special_tokens)
            if d.name == "special_tokens" else d
            for d in detectors
        ]  # fmt: skip
    metrics = declared_metrics()
    verdicts = []
    for number, row in rows:
        where = f"{source} line {number}".strip()
        try:
            probe = Probe(id="detect", kind=row.kind, prompt=row.prompt or "", expect=row.expect)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(f"{where}: {first['loc'][0]}: {first['msg']}") from None
        inp = ScoringInput(probe, row.text, finish_reason=row.finish_reason)
        reasons = []
        for detector in detectors:
            if not detector.applies_to(probe):
                continue
            try:
                scores = detector.score(inp)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            reasons += [_reason(detector.name, s, row.text, metrics.get(s.metric))
                        for s in scores if s.flagged]  # fmt: skip
        reasons += nll_reasons.get(number, [])
        label = (row.model_extra or {}).get("broken")
        broken = label if isinstance(label, bool) else None
        verdicts.append(Verdict(row.id or str(number), number, reasons, broken))
    return verdicts


def _likelihood_reasons(
    rows: Sequence[tuple[int, DetectRow]], logprobs: Logprobs
) -> dict[int, list[Reason]]:
    """Flagged likelihood metrics by line, for the rows with a prompt and some text."""
    from canary.detectors.likelihood import ReferenceLikelihood

    detector = ReferenceLikelihood()
    judged = [(n, r) for n, r in rows if r.prompt and r.text.strip()]
    values = logprobs([(r.prompt or "", r.text) for _, r in judged]) if judged else []
    metrics = declared_metrics()
    out: dict[int, list[Reason]] = {}
    for (number, row), lps in zip(judged, values, strict=True):
        scores = detector.score_logprobs(lps)
        flagged = [s for s in scores if s.flagged]
        out[number] = [_reason(detector.name, s, row.text, metrics.get(s.metric)) for s in flagged]
    return out


def _reason(detector: str, score: Score, text: str, metric: Metric | None) -> Reason:
    span = None
    reader = metric.explain.spans if metric is not None else None
    evidence: Mapping[str, Any] | None = score.evidence
    if reader is not None:
        spans = reader(EvidenceView(text=text, evidence=evidence, located=evidence))
        if spans:
            s = spans[0]
            span = {"start": s.start, "end": s.end, "text": text[s.start : s.end][:80],
                    "note": s.note}  # fmt: skip
    return Reason(detector, score.metric, score.value, span)
