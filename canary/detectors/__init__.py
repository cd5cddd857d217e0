"""Detectors: pure functions from one probe result to typed scores.

Each detector lives in its own module and registers itself; every score it returns is stored
with the detector's name, version and arguments (`DetectorSpec`), so scores made differently
are never compared. Built-ins: ``script`` (unexpected Unicode scripts, mojibake), ``code``
(Python/JSON/SQL that does not parse), ``fixed`` (wrong answers), ``entropy`` (entropy,
compressibility, repetition, degenerate output). `topk` and `determinism` hold the pure functions
that compare against a reference model and across repeats.

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

A third-party package exposes it through the ``canary.detectors`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Iterable

from canary.detectors import code, entropy, fixed, script  # noqa: F401  (register built-ins)
from canary.detectors.base import (
    Detector,
    DetectorLike,
    DetectorSpec,
    Score,
    ScoringInput,
)
from canary.detectors.registry import build_detector, detectors, register_detector

_DEFAULTS: dict[str, tuple[Detector, DetectorSpec]] = {}


def default_detector(name: str) -> Detector:
    """The detector called ``name`` with its default arguments (built once, then reused)."""
    return _default(name)[0]


def _default(name: str) -> tuple[Detector, DetectorSpec]:
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
    selected = detectors.names() if names is None else list(names)
    results: list[tuple[DetectorSpec, Score]] = []
    for name in selected:
        detector, spec = _default(name)
        if detector.applies_to(inp.probe):
            results.extend((spec, score) for score in detector.score(inp))
    return results


__all__ = [
    "Detector",
    "DetectorLike",
    "DetectorSpec",
    "Score",
    "ScoringInput",
    "build_detector",
    "default_detector",
    "detectors",
    "register_detector",
    "score_all",
]
