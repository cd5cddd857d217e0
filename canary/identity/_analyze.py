"""From grouped answers to test outcomes: each function reads one kind of probe.

Inputs are the answers `by_probe` grouped (probe id → repeats) for the endpoint and, for a
serving trusted side, for that side; the reference model when the trusted side is the
reference. Outputs are `TestOutcome`s and evidence rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from canary.identity._border import flip_test
from canary.identity._kl import bucket_kl, summarize
from canary.identity._mmd import stratified_mmd_test
from canary.identity._rut import rank_uniformity_test
from canary.identity._tracking import tracking_test
from canary.identity._verdict import TestOutcome
from canary.records import token_key
from canary.stats.equivalence import kl_margin_test

if TYPE_CHECKING:
    from canary.reference import ReferenceModel
    from canary.store.views import StoredResult

Grouped = Mapping[str, Sequence["StoredResult"]]


@dataclass(frozen=True)
class Evidence:
    """One place the two sides differ most (texts are sanitised by the renderer)."""

    test: str
    probe_id: str
    position: int | None
    score: float
    endpoint: str
    trusted: str


def _probes(grouped: Grouped, prefix: str) -> list[str]:
    return sorted(k for k in grouped if k.startswith(prefix))


def _key(token: object) -> str:
    return token_key(token.token, token.bytes)  # type: ignore[attr-defined]


def kl_against_reference(
    grouped: Grouped,
    model: ReferenceModel,
    prompts: Mapping[str, str],
    *,
    margin: float,
    alpha: float,
) -> tuple[TestOutcome | None, list[Evidence]]:
    """Per-position KL of the endpoint's top-k against the reference's full distribution."""
    from canary.reference import teacher_positions

    per_probe: list[float] = []
    kls: list[float] = []
    same: list[bool] = []
    evidence: list[Evidence] = []
    for probe_id in _probes(grouped, "kl-"):
        answer = grouped[probe_id][0]
        tokens = [t for t in (answer.tokens or []) if t.top]
        if not tokens or len(tokens) != len(answer.tokens or []):
            continue
        rows = teacher_positions(model, prompts[probe_id], tokens, answer.output_text or "")
        values = []
        for position, (token, (ref, ref_top)) in enumerate(zip(tokens, rows, strict=False)):
            value = bucket_kl(ref, dict(token.top), reference_full=True)
            values.append(value)
            same.append(_key(token) == ref_top)
            evidence.append(Evidence("kl", probe_id, position, value, _key(token), ref_top))
        if values:
            kls += values
            per_probe.append(sum(values) / len(values))
    return _kl_outcome(per_probe, kls, same, margin, alpha), _top(evidence)


def kl_between(
    grouped: Grouped, trusted: Grouped, *, margin: float, alpha: float
) -> tuple[TestOutcome | None, list[Evidence]]:
    """Per-position KL between two serving sides' top-k, up to their first different token."""
    per_probe: list[float] = []
    kls: list[float] = []
    same: list[bool] = []
    evidence: list[Evidence] = []
    for probe_id in _probes(grouped, "kl-"):
        if probe_id not in trusted:
            continue
        mine = grouped[probe_id][0].tokens or []
        theirs = trusted[probe_id][0].tokens or []
        values = []
        for position, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if not a.top or not b.top:
                break
            value = bucket_kl(dict(b.top), dict(a.top), reference_full=False)
            values.append(value)
            same.append(_key(a) == _key(b))
            evidence.append(Evidence("kl", probe_id, position, value, _key(a), _key(b)))
            if _key(a) != _key(b):
                break  # the prefixes differ from here on: positions are no longer paired
        if values:
            kls += values
            per_probe.append(sum(values) / len(values))
    return _kl_outcome(per_probe, kls, same, margin, alpha), _top(evidence)


def _kl_outcome(
    per_probe: list[float], kls: list[float], same: list[bool], margin: float, alpha: float
) -> TestOutcome | None:
    if not per_probe:
        return None
    summary = summarize(kls, same)
    test = kl_margin_test(per_probe, margin=margin, alpha=alpha)
    return kl_margin_outcome(
        p_different=test.p_different,
        p_same=test.p_same,
        samples=summary.positions,
        mean_kl=summary.mean_kl,
        p99_kl=summary.p99_kl,
        kl_upper=test.upper,
        margin=margin,
        alpha=alpha,
        data=f"{test.units} probes, {summary.positions} positions",
        bounds="bootstrap bounds",
        same_top1=summary.same_top1,
        kl_lower=test.lower,
    )


def kl_margin_outcome(
    *,
    p_different: float,
    p_same: float,
    samples: int,
    mean_kl: float,
    p99_kl: float,
    kl_upper: float,
    margin: float,
    alpha: float,
    data: str,
    bounds: str,
    **extra: float,
) -> TestOutcome:
    """The kl-margin test's outcome, one shape whether decided from the probes just sent or
    from stored scores (``canary identity --stored``), so renderers and the verdict read both
    alike; ``extra`` effects are what only one side measures."""
    return TestOutcome(
        name="kl-margin",
        p_value=p_different,
        p_same=p_same,
        samples=samples,
        effects={
            "mean_kl": mean_kl,
            "p99_kl": p99_kl,
            **extra,
            "kl_upper": kl_upper,
            "margin": margin,
        },
        note=f"{data}; {bounds} at level {alpha:.3g} against margin {margin:g} nats/token",
    )


def _texts(grouped: Grouped, probe_ids: Sequence[str]) -> list[list[str]]:
    return [[r.output_text or "" for r in grouped.get(p, [])] for p in probe_ids]


def mmd(
    grouped: Grouped, trusted_texts: Sequence[Sequence[str]], probe_ids: Sequence[str], seed: int
) -> tuple[TestOutcome | None, list[Evidence]]:
    """MET's Hamming MMD, endpoint samples against the trusted side's, per prompt."""
    result = stratified_mmd_test(_texts(grouped, probe_ids), trusted_texts, seed=seed)
    if result.prompts == 0:
        return None, []
    outcome = TestOutcome(
        name="mmd-hamming",
        p_value=result.p_value,
        samples=result.samples,
        effects={"mmd": result.mmd},
        note=f"{result.prompts} prompts, within-prompt permutations (MET statistic)",
    )
    evidence = [
        Evidence("mmd", probe_ids[i], None, share, "", "") for i, share in result.per_prompt.items()
    ]
    return outcome, _top(evidence)


def rut(
    grouped: Grouped,
    model: ReferenceModel,
    prompts: Mapping[str, str],
    reference_texts: Sequence[Sequence[str]],
    probe_ids: Sequence[str],
    seed: int,
) -> TestOutcome | None:
    """RUT: the endpoint's first sample per prompt ranked among the reference's samples."""
    from canary.reference import log_likelihoods

    ids = [p for p in probe_ids if grouped.get(p)]
    if len(ids) < 2:
        return None
    index = {p: i for i, p in enumerate(probe_ids)}
    mine = log_likelihoods(model, [(prompts[p], grouped[p][0].output_text or "") for p in ids])
    pairs = [(prompts[p], text) for p in ids for text in reference_texts[index[p]]]
    flat = log_likelihoods(model, pairs)
    refs: list[list[float]] = []
    at = 0
    for p in ids:
        n = len(reference_texts[index[p]])
        refs.append(flat[at : at + n])
        at += n
    result = rank_uniformity_test(mine, refs, seed=seed)
    if result.prompts < 2:
        return None
    return TestOutcome(
        name="rut",
        p_value=result.p_value,
        samples=result.prompts,
        effects={"cvm": result.statistic, "mean_rank": result.mean_rank},
        note=f"{result.prompts} prompts, 1 endpoint sample ranked among "
        f"{result.reference_samples} reference samples (Cramér–von Mises)",
    )


def tracking(grouped: Grouped, trusted: Grouped, seed: int) -> TestOutcome | None:
    """First-token logprob tracking between two serving sides."""
    ids = [p for p in _probes(grouped, "track-") if p in trusted]
    a = [[dict(r.tokens[0].top) for r in grouped[p] if r.tokens] for p in ids]
    b = [[dict(r.tokens[0].top) for r in trusted[p] if r.tokens] for p in ids]
    result = tracking_test(a, b, seed=seed)
    if result.prompts == 0:
        return None
    return TestOutcome(
        name="logprob-tracking",
        p_value=result.p_value,
        samples=result.samples,
        effects={"max_shift": result.max_shift, "tolerance": result.tolerance},
        note=f"{result.prompts} prompts, permutation tests combined by Fisher's method; "
        f"shifts within {result.tolerance:g} nats count as the same",
    )


def border(
    grouped: Grouped, choices: Mapping[str, str], *, alpha: float
) -> tuple[TestOutcome | None, list[Evidence]]:
    """Flips of the recorded greedy choice on border inputs, against the noise flip rate."""
    flips = 0
    seen = 0
    evidence = []
    for probe_id, choice in choices.items():
        answers = grouped.get(probe_id)
        if not answers:
            continue
        seen += 1
        text = answers[0].output_text or ""
        if text != choice:
            flips += 1
            evidence.append(Evidence("border", probe_id, 0, 1.0, text, choice))
    if seen == 0:
        return None, []
    test = flip_test(flips, seen, alpha=alpha)
    outcome = TestOutcome(
        name="border-flips",
        p_value=test.p_value,
        p_same=test.p_same,
        samples=seen,
        effects={"flip_rate": test.flip_rate, "flip_upper": test.upper},
        note=f"{flips}/{seen} flipped; binomial test against a noise flip rate of "
        f"{test.noise_rate:g}",
    )
    return outcome, evidence[:5]


def _top(evidence: list[Evidence], n: int = 5) -> list[Evidence]:
    finite = [e for e in evidence if math.isfinite(e.score)]
    return sorted(finite, key=lambda e: -e.score)[:n]
