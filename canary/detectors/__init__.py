"""Detectors: pure functions from one probe result to typed scores.

Each detector lives in its own module and registers itself; every score it returns is stored
with the detector's name, version and arguments (`DetectorSpec`), so scores made differently
are never compared. Built-ins: ``script`` (unexpected Unicode scripts, mojibake), ``code``
(Python/JSON/SQL that does not parse), ``fixed`` (wrong answers), ``entropy`` (entropy,
compressibility, repetition, degenerate output). `topk` and `determinism` hold the pure functions
that compare against a reference model and across repeats. On every kind, per output:
``special_tokens``, ``tokenizer_markers``, ``repetition``, ``symbol_salad``, ``word_salad``;
``likelihood`` is scored against the reference model (docs/detectors.md), and so is
``model_equality`` (is the endpoint's next-token distribution the reference model's?).
`triage` scores rows from a file (`canary detect`).

Adding a detector takes a few lines, in your package or here::

    from dataclasses import dataclass
    from typing import ClassVar

    from canary.detectors import Detector, Score, ScoringInput, register_detector

    @register_detector
    @dataclass(frozen=True)
    class Shouting(Detector):
        name: ClassVar[str] = "shouting"
        version: ClassVar[str] = "1"
        kinds: ClassVar[frozenset[str]] = frozenset({"*"})

        threshold: float = 0.5  # fields are the arguments recorded with every score

        def measure(self, inp: ScoringInput) -> list[Score]:
            text = inp.output_text or ""
            share = sum(c.isupper() for c in text) / max(1, len(text))
            return [Score("upper_share", share, flagged=share > self.threshold)]

A third-party package exposes it through the ``canary.detectors`` entry-point group. Give it
``metrics = (rate("upper_share", 0.01),)`` and compare, baselines, alerts and reports test it
like a built-in (`canary.detectors.metrics`); a `GroupDetector` judges a probe's repeats together.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module

from canary.detectors.base import (
    Detector,
    DetectorLike,
    DetectorSpec,
    GroupDetector,
    GroupMember,
    Score,
    ScoringInput,
)
from canary.detectors.metrics import Bins, EvidenceView, Explanation, Metric, Span
from canary.detectors.registry import (
    AnyDetector,
    build_detector,
    declared_metrics,
    declared_probe_kinds,
    detectors,
    group_detector_names,
    register_detector,
    result_detector_names,
)

#: Built-in detector modules, registered in this order: the order reports list their metrics.
BUILT_INS = (
    "script",
    "code",
    "fixed",
    "entropy",
    "topk",
    "determinism",
    "sampling",
    "outcome",
    "special_tokens",
    "markers",
    "repetition",
    "salad",
    "wordsalad",
    "likelihood",
    "model_equality",
    "tool_calls",
    "prefix_cache",
    "prompt_echo",
)
for _module in BUILT_INS:
    import_module(f"canary.detectors.{_module}")

_DEFAULTS: dict[str, tuple[AnyDetector, DetectorSpec]] = {}


def default_detector(name: str) -> AnyDetector:
    """The detector called ``name`` with its default arguments (built once, then reused)."""
    return _default(name)[0]


def _default(name: str) -> tuple[AnyDetector, DetectorSpec]:
    built = _DEFAULTS.get(name)
    if built is None:
        detector = build_detector(name)
        built = _DEFAULTS[name] = (detector, detector.spec)
    return built


def score_all(
    inp: ScoringInput, names: Iterable[str] | None = None
) -> list[tuple[DetectorSpec, Score]]:
    """Scores of every detector (or those in ``names``) that applies to ``inp.probe.kind``.

    Raises `ConfigError` for an unknown detector name or a probe whose ``expect`` a detector
    cannot use (an unknown script or language, an invalid regex).
    """
    selected = result_detector_names() if names is None else list(names)
    results: list[tuple[DetectorSpec, Score]] = []
    for name in selected:
        detector, spec = _default(name)
        if detector.applies_to(inp.probe):
            results.extend((spec, score) for score in detector.score(inp))
    return results


__all__ = [
    "BUILT_INS",
    "AnyDetector",
    "Bins",
    "Detector",
    "DetectorLike",
    "DetectorSpec",
    "EvidenceView",
    "Explanation",
    "GroupDetector",
    "GroupMember",
    "Metric",
    "Score",
    "ScoringInput",
    "Span",
    "build_detector",
    "declared_metrics",
    "declared_probe_kinds",
    "default_detector",
    "detectors",
    "group_detector_names",
    "register_detector",
    "result_detector_names",
    "score_all",
]
