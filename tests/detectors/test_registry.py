from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from canary.detectors import (
    Detector,
    DetectorLike,
    Score,
    ScoringInput,
    build_detector,
    detectors,
    score_all,
)
from canary.errors import ConfigError
from canary.registry import Registry
from tests.detectors.inputs import given


def test_builtins_are_registered() -> None:
    assert {"script", "code", "fixed", "entropy"} <= set(detectors.names())


def test_unknown_name_suggests_a_close_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'script'"):
        detectors.get("scirpt")
    with pytest.raises(ConfigError, match="did you mean 'entropy'"):
        list(score_all(given("x"), names=["entropy2"]))


def test_bad_arguments_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bad arguments"):
        build_detector("script", no_such_arg=1)


@pytest.mark.parametrize(
    "inp",
    [
        given("The answer is สวัสดี.", "script"),
        given("```python\ndef f(:\n```", "code", language="python"),
        given("Lyon", "fixed", exact="Paris"),
        given("once upon a time", "entropy"),
    ],
)
def test_every_score_names_detector_version_and_args(inp: ScoringInput) -> None:
    results = score_all(inp)
    assert results
    for spec, score in results:
        assert isinstance(score, Score)
        assert spec.name in detectors and spec.version
        assert spec.args == build_detector(spec.name).args
        json.dumps(spec.args)  # storable
        json.dumps(score.evidence)
        assert spec.fingerprint.startswith(f"{spec.version}+")
    assert any(score.flagged for _, score in results) == (inp.probe.kind != "entropy")


def test_detectors_only_score_their_kinds_and_skip_failed_requests() -> None:
    metrics = {(spec.name, s.metric) for spec, s in score_all(given("x = 1", "code"))}
    assert ("code", "code_parse_error") in metrics and ("script", "unexpected_script") in metrics
    assert not any(name in ("fixed", "entropy") for name, _ in metrics)
    assert score_all(given(None, "code", error_kind="timeout", language="python")) == []


def test_args_change_the_fingerprint() -> None:
    default, custom = build_detector("script"), build_detector("script", context=5)
    assert default.spec.fingerprint != custom.spec.fingerprint
    assert custom.args["context"] == 5 and custom.spec.version == default.spec.version


def test_a_user_detector_in_a_few_lines() -> None:
    # A registry of its own, so the built-in one (and the other tests) never see it.
    local: Registry[type[Detector]] = Registry("detector")

    @local.register("shouting")
    @dataclass(frozen=True)
    class Shouting(Detector):
        name: ClassVar[str] = "shouting"
        version: ClassVar[str] = "1"

        threshold: float = 0.5

        def measure(self, inp: ScoringInput) -> list[Score]:
            text = inp.output_text or ""
            share = sum(c.isupper() for c in text) / max(1, len(text))
            return [Score("upper_share", share, flagged=share > self.threshold)]

    detector = local.get("shouting")(threshold=0.4)
    assert isinstance(detector, DetectorLike)
    (score,) = detector.score(given("STOP THAT"))
    assert score.flagged and detector.spec.args == {"threshold": 0.4}
    with pytest.raises(ValueError, match="already registered"):
        local.register("shouting")(Detector)
