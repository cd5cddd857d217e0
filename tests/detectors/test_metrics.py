"""Detectors declare their metrics; the policies, bins and probe kinds are read from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from canary.detectors import (
    Detector,
    GroupDetector,
    Metric,
    Score,
    ScoringInput,
    declared_metrics,
    declared_probe_kinds,
    detectors,
    group_detector_names,
    register_detector,
    result_detector_names,
)
from canary.detectors.metrics import rate
from canary.errors import ConfigError
from canary.probes.model import Probe
from canary.stats import DEFAULT_POLICIES
from canary.stats.kinds import stat_tests


def test_every_declared_metric_has_a_registered_kind_and_a_policy() -> None:
    declared = declared_metrics()
    assert {"unexpected_script", "majority_mismatch", "error_rate", "latency_ms"} <= set(declared)
    for name, metric in declared.items():
        assert metric.kind in stat_tests
        assert DEFAULT_POLICIES[name].kind == metric.kind


def test_group_detectors_share_the_registry_but_not_per_result_scoring() -> None:
    assert {"determinism", "topk", "sampling"} <= set(group_detector_names())
    assert not set(group_detector_names()) & set(result_detector_names())
    assert {"script", "code", "fixed", "entropy"} <= set(result_detector_names())


def test_probe_kinds_are_what_the_detectors_score() -> None:
    assert set(declared_probe_kinds()) == {
        "fixed", "code", "script", "entropy", "topk", "determinism", "sampling", "routing",
        "generic", "tool_call", "prefix_cache",
    }  # fmt: skip


def test_a_registered_detector_brings_its_metric_and_probe_kind() -> None:
    @dataclass(frozen=True)
    class Whisper(Detector):
        name: ClassVar[str] = "whisper-test"
        version: ClassVar[str] = "1"
        kinds: ClassVar[frozenset[str]] = frozenset({"whisper"})
        metrics: ClassVar[tuple[Metric, ...]] = (rate("whispered", 0.05, critical=True),)

        def measure(self, inp: ScoringInput) -> list[Score]:
            return [Score("whispered", 0.0)]

    register_detector(Whisper)
    try:
        assert DEFAULT_POLICIES["whispered"].critical
        assert Probe(id="w", kind="whisper", prompt="psst").kind == "whisper"
    finally:
        detectors.unregister("whisper-test")
    assert "whispered" not in DEFAULT_POLICIES
    with pytest.raises(ValueError, match="unknown kind 'whisper'"):
        Probe(id="w", kind="whisper", prompt="psst")


def test_two_detectors_declaring_one_metric_is_refused() -> None:
    @dataclass(frozen=True)
    class Copycat(GroupDetector):
        name: ClassVar[str] = "copycat-test"
        version: ClassVar[str] = "1"
        metrics: ClassVar[tuple[Metric, ...]] = (rate("unexpected_script", 0.5),)

    register_detector(Copycat)
    try:
        with pytest.raises(ConfigError, match="declared by detectors 'script' and 'copycat-test'"):
            declared_metrics()
    finally:
        detectors.unregister("copycat-test")
