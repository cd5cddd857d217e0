"""The `model_equality` detector: per-position KL along the shared greedy prefix, one number
per probe, flagged only beyond numeric noise."""

from __future__ import annotations

import math

import pytest

from canary.detectors import declared_metrics, default_detector
from canary.detectors.model_equality import ModelEquality, bucket_kl, paired_position_kls
from canary.records import TokenLogprob


def position(token: str, top: dict[str, float], raw: bytes | None = None) -> TokenLogprob:
    return TokenLogprob(token=token, logprob=top.get(token), top=top, bytes=raw)


def dist(*probs: float, names: str = "abcde") -> dict[str, float]:
    return {name: math.log(p) for name, p in zip(names, probs, strict=False)}


REFERENCE = [
    position("a", dist(0.6, 0.2, 0.1, 0.05, 0.03)),
    position("b", dist(0.1, 0.7, 0.1, 0.05, 0.03)),
    position("c", dist(0.05, 0.05, 0.8, 0.05, 0.03)),
    position("d", dist(0.05, 0.05, 0.05, 0.8, 0.03)),
]


def test_identical_distributions_score_zero_and_pass() -> None:
    scores = {s.metric: s for s in ModelEquality().score_tokens(REFERENCE, REFERENCE)}
    assert scores["model_kl"].value == pytest.approx(0.0, abs=1e-12)
    assert scores["model_mismatch"].flagged is False


def test_numeric_noise_passes_and_another_model_is_flagged() -> None:
    noisy = [
        position(t.token, {k: v + 1e-3 * (i % 2) for i, (k, v) in enumerate(t.top.items())})
        for t in REFERENCE
    ]
    assert ModelEquality().score_tokens(noisy, REFERENCE)[1].flagged is False
    other = [position(t.token, dist(0.3, 0.3, 0.2, 0.1, 0.05)) for t in REFERENCE]
    kl, mismatch = ModelEquality().score_tokens(other, REFERENCE)
    assert kl.value is not None and kl.value > ModelEquality().max_kl
    assert mismatch.flagged and mismatch.evidence is not None
    assert mismatch.evidence["positions"] == len(REFERENCE)
    assert 0 <= mismatch.evidence["max_at"] < len(REFERENCE)


def test_positions_after_the_first_different_token_are_not_paired() -> None:
    diverged = [REFERENCE[0], position("x", dist(0.5, 0.4, 0.05, names="xbc")), *REFERENCE[2:]]
    paired, first = paired_position_kls(diverged, REFERENCE)
    assert first == 1
    assert [at for at, _ in paired] == [0, 1]  # the divergence itself still shares the prefix


def test_ambiguous_partial_tokens_end_or_skip_the_comparison() -> None:
    # A chosen token spelled "" cannot be checked: the comparison ends before it.
    cut = [REFERENCE[0], position("", {}), *REFERENCE[2:]]
    paired, first = paired_position_kls(cut, REFERENCE)
    assert [at for at, _ in paired] == [0] and first is None
    # With its bytes known it is compared; a top-k holding colliding "\ufffd" keys is skipped.
    spelled = position("\ufffd", {"\ufffd": -0.1, "b": -3.0}, raw=b"\xe0")
    ref = position("\ufffd", {"<0xE0>": -0.1, "b": -3.0}, raw=b"\xe0")
    paired, first = paired_position_kls([spelled], [ref])
    assert paired == [] and first is None


def test_positions_without_the_chosen_tokens_logprob_are_no_evidence() -> None:
    """Old rows kept top-k lists without the chosen token, or no logprob at all."""
    broken = [
        TokenLogprob("a", None, {"b": -1.0}),  # chosen logprob lost
        TokenLogprob("b", -0.4, {"x": -1.0}),  # top-k without the chosen token
        *REFERENCE[2:],
    ]
    paired, first = paired_position_kls(broken, REFERENCE)
    assert [at for at, _ in paired] == [2, 3] and first is None
    assert ModelEquality().score_tokens(broken, REFERENCE)[1].flagged is False


def test_bucket_kl_is_zero_on_equal_inputs_and_grows_with_the_shift() -> None:
    p = dist(0.6, 0.2, 0.1, 0.05, 0.03)
    assert bucket_kl(p, p, reference_full=False) == pytest.approx(0.0, abs=1e-12)
    small = bucket_kl(p, dist(0.55, 0.25, 0.1, 0.05, 0.03), reference_full=False)
    large = bucket_kl(p, dist(0.2, 0.6, 0.1, 0.05, 0.03), reference_full=False)
    assert 0 < small < large


def test_short_outputs_are_not_judged() -> None:
    assert ModelEquality(min_positions=5).score_tokens(REFERENCE, REFERENCE) == []
    assert ModelEquality().score_tokens([], REFERENCE) == []


def test_registered_with_declared_policies() -> None:
    detector = default_detector("model_equality")
    assert getattr(type(detector), "reference", False) is True
    metrics = declared_metrics()
    assert metrics["model_mismatch"].kind == "rate"
    assert metrics["model_kl"].kind == "continuous"
