"""What reference-based checks judge against: the configured model, a trusted endpoint, or
nothing (then they are not made, and say so). One real round of the simulated fleet over HTTP,
scored several ways."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from canary.config.fleet import FleetConfig
from canary.config.reference import NO_REFERENCE_HINT, SHIPPED_MODEL, ReferenceConfig
from canary.probes.model import Message, Probe, SamplingParams, Suite
from canary.records import ResultFilter
from canary.runner.once import run_once
from canary.scoring import missing_reference_note, score_stored
from canary.sim.embedded import embedded_fleet
from canary.store import Store, open_store
from canary.store.models import DetectorSpecRow

GREEDY = SamplingParams(temperature=0.0, max_tokens=8, logprobs=True, top_logprobs=5)
SUITE = Suite(
    name="refs",
    probes=[
        Probe(id="prose", kind="topk", prompt="Return the number of", params=GREEDY),
        Probe(id="code", kind="topk", prompt="def add(a, b):\n    return", params=GREEDY),
        Probe(
            id="chat",
            kind="topk",
            messages=[Message(role="user", content="Return the number of")],
            params=GREEDY,
        ),
        Probe(
            id="sample",
            kind="sampling",
            prompt="Return the",
            repeat=40,
            params=SamplingParams(temperature=1.0, top_k=20, max_tokens=1, logprobs=True),
        ),
        Probe(id="plain", kind="fixed", prompt="2+2=", expect={"exact": "4"}),
    ],
)


@dataclass
class Round:
    fleet: FleetConfig
    url: str
    run_id: int

    def store(self) -> Store:
        return open_store(self.url)


@pytest.fixture(scope="module")
def round_(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Round]:
    url = f"sqlite:///{tmp_path_factory.mktemp('refs') / 'store.db'}"
    with embedded_fleet() as fleet:
        targets = [fleet.endpoint(n) for n in ("gpu-fp32", "tpu-bf16", "front-door")]
        stored = run_once(fleet, SUITE, open_store(url), targets, concurrency=8)
    assert stored.status == "completed"
    yield Round(fleet, url, stored.run_id)


def _scores(store: Store, run_id: int) -> dict[str, dict[str, list[tuple[str, float | None]]]]:
    out: dict[str, dict[str, list[tuple[str, float | None]]]] = {}
    for result in store.results_for_run(run_id):
        for s in result.scores:
            out.setdefault(result.endpoint, {}).setdefault(s.metric, []).append(
                (s.detector, s.value)
            )
    return out


def _specs(store: Store, detector: str) -> dict[str, dict[str, object]]:
    """The stored arguments of every fingerprint of ``detector``, by fingerprint."""
    from sqlalchemy import select

    with store.engine.connect() as conn:
        rows = conn.execute(
            select(DetectorSpecRow.fingerprint, DetectorSpecRow.args).where(
                DetectorSpecRow.detector == detector
            )
        ).all()
    return {fingerprint: dict(args) for fingerprint, args in rows}


def _spec_args(store: Store, detector: str) -> list[dict[str, object]]:
    return list(_specs(store, detector).values())


def test_no_reference_makes_no_reference_checks_and_says_so(round_: Round) -> None:
    store = round_.store()
    filt = ResultFilter(run_ids=(round_.run_id,))
    report = score_stored(store, filt, reference=None)
    assert report.reference is None
    assert not {"top1_agreement", "first_divergence", "sampling_fit_p"} & set(report.scored)
    assert "exact_match" in report.scored or report.scored  # the other detectors still ran
    # 3 greedy topk probes + 40 samples, on 3 endpoints, less samples that generated nothing.
    generated = [
        r
        for r in store.results_for_run(round_.run_id)
        if r.probe_id != "plain" and r.error_kind is None and r.output_text
    ]
    assert 3 * 3 < report.unjudged == len(generated) <= 3 * (3 + 40)
    assert report.reference_note is not None and NO_REFERENCE_HINT in report.reference_note
    assert report.to_dict()["reference_note"] == report.reference_note
    note = missing_reference_note(store, filt)
    assert note is not None and "--reference DIR" in note


def test_shipped_model_reference_judges_every_endpoint(round_: Round) -> None:
    store = round_.store()
    filt = ResultFilter(run_ids=(round_.run_id,))
    report = score_stored(store, filt, reference=round_.fleet.reference)
    assert report.reference is not None and "shipped tiny model" in report.reference
    assert report.unjudged == 0 and report.reference_note is None
    assert missing_reference_note(store, filt) is None
    scores = _scores(store, round_.run_id)
    for endpoint in ("gpu-fp32", "front-door"):
        # fp32 on the shipped model: the chat probe rendered by the shipped chat template agrees.
        agreement = [v for _, v in scores[endpoint]["top1_agreement"]]
        assert agreement and all(v == 1.0 for v in agreement), (endpoint, agreement)
        assert not any(v for _, v in scores[endpoint]["first_divergence"])
    # The shipped template is canary's transcript: the fingerprint chat probes always had.
    topk_args = _spec_args(store, "topk")
    assert topk_args and all(set(a) == {"reference", "min_gap_nats"} for a in topk_args)


def test_an_endpoint_chat_template_is_used_and_fingerprinted(round_: Round) -> None:
    store = round_.store()
    filt = ResultFilter(run_ids=(round_.run_id,), labels={"endpoint": "front-door"})
    # The front door applies the transcript; a reference told it applies chatml disagrees.
    score_stored(
        store, filt, reference=round_.fleet.reference, chat_templates={"front-door": "chatml"}
    )
    chatml = [a for a in _spec_args(store, "topk") if a.get("chat_template") == "chatml"]
    assert len(chatml) == 1
    agreement = [v for _, v in _scores(store, round_.run_id)["front-door"]["top1_agreement"]]
    assert any(v is not None and v < 1.0 for v in agreement), agreement
    score_stored(store, filt, reference=round_.fleet.reference)  # back to the shipped template


def test_a_trusted_endpoint_as_the_reference(round_: Round) -> None:
    store = round_.store()
    filt = ResultFilter(run_ids=(round_.run_id,))
    report = score_stored(store, filt, reference=ReferenceConfig(endpoint="gpu-fp32"))
    assert report.reference == "endpoint gpu-fp32"
    against = {
        fingerprint
        for detector in ("topk", "sampling")
        for fingerprint, args in _specs(store, detector).items()
        if args.get("reference_endpoint") == "gpu-fp32"
    }
    assert len(against) == 2
    judged: dict[str, set[str]] = {}
    for r in store.results_for_run(round_.run_id):
        for s in r.scores:
            if s.detector in ("topk", "sampling") and s.detector_version in against:
                judged.setdefault(r.endpoint, set()).add(s.metric)
                if s.evidence and s.metric != "sampling_first_token":
                    assert s.evidence["reference_endpoint"] == "gpu-fp32"
    # Only the other completions pool: never the reference itself, nor the chat front door.
    assert set(judged) == {"tpu-bf16"}
    assert {"top1_agreement", "first_divergence", "sampling_fit_p"} <= judged["tpu-bf16"]
    bf16 = _scores(store, round_.run_id)["tpu-bf16"]
    # Same model, honest bf16 against fp32: agreement high, sampling indistinguishable.
    assert all(v is not None and v > 0.5 for _, v in bf16["top1_agreement"])
    [(_, p_value)] = bf16["sampling_fit_p"]
    assert p_value is not None and p_value > 1e-3
    # Model equality is judged against the trusted endpoint's top-k too: the same model.
    (trusted,) = [
        fingerprint
        for fingerprint, args in _specs(store, "model_equality").items()
        if args.get("reference_endpoint") == "gpu-fp32"
    ]
    equality = [
        s
        for r in store.results_for_run(round_.run_id)
        if r.endpoint == "tpu-bf16"
        for s in r.scores
        if s.detector == "model_equality" and s.detector_version == trusted
    ]
    assert {s.metric for s in equality} == {"model_kl", "model_mismatch"}
    assert not any(s.flagged for s in equality)


def test_dtype_changes_the_stored_fingerprint(round_: Round) -> None:
    store = round_.store()
    filt = ResultFilter(run_ids=(round_.run_id,), labels={"endpoint": "gpu-fp32"})
    score_stored(store, filt, reference=ReferenceConfig(model=SHIPPED_MODEL))
    fp32 = {
        r.id: {s.detector_version for s in r.scores if s.detector == "topk"}
        for r in store.results_for_run(round_.run_id)
        if r.endpoint == "gpu-fp32"
    }
    score_stored(store, filt, reference=ReferenceConfig(model=SHIPPED_MODEL, dtype="bfloat16"))
    bf16 = {
        r.id: {s.detector_version for s in r.scores if s.detector == "topk"}
        for r in store.results_for_run(round_.run_id)
        if r.endpoint == "gpu-fp32"
    }
    judged = [k for k, v in fp32.items() if v]
    assert judged and all(fp32[k] != bf16[k] for k in judged)
