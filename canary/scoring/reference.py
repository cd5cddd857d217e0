"""Scoring against the reference: top-token agreement and sampling-distribution fit.

Greedy `topk` and `routing` probes are compared position by position with the reference's
greedy continuation (`canary.detectors.topk`); only a divergence where the reference was
confident is flagged, so honest bf16 near-ties are measured but not alarmed on. `sampling`
probes are judged as a group (`canary.scoring.sampling_fit`). The reference is a local model
(`ReferenceConfig.model`, fp32 by default) or a trusted endpoint of the fleet
(`canary.scoring.endpoint_reference`); with none, these checks are not made at all. torch loads
only when a model reference has results to judge.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canary.config.reference import SHIPPED_MODEL, ReferenceConfig
from canary.scoring.kinds import SAMPLING_KINDS, TOPK_KINDS
from canary.scoring.probes import ProbeCache
from canary.scoring.sampling_fit import (
    MIN_EXPECTED,
    PARTIAL,
    SAMPLING_ALPHA,
    first_token_key,
    fit_to_distribution,
    merge_partial,
)

if TYPE_CHECKING:
    from canary.probes.model import Probe
    from canary.records import ResultFilter
    from canary.reference import ReferenceModel
    from canary.store import Store
    from canary.store.scores import ScorableResult, ScoreToSave

__all__ = [
    "MIN_EXPECTED",
    "SAMPLING_ALPHA",
    "SAMPLING_KINDS",
    "TOPK_KINDS",
    "ReferenceScorer",
    "reference_detector_names",
    "reference_kinds",
    "shared_reference_model",
]

TOPK_VERSION = "3"
SAMPLING_VERSION = "2"
#: The reference `score_stored` uses when a caller asks for "the reference" without naming one.
SHIPPED_REFERENCE = ReferenceConfig(model=SHIPPED_MODEL)


@functools.lru_cache(maxsize=2)
def shared_reference_model(
    path: str | Path | None = None, device: str = "cpu", dtype: str = "float32"
) -> ReferenceModel:
    """One loaded reference model per (path, device, dtype) for the process: the daemon scores
    every round, and reloading the model for each round costs time and memory churn
    (`benchmarks/soak.py` measures the daemon's memory per round). It is only read."""
    from canary.reference import ReferenceModel

    return ReferenceModel.load(path, device=device, dtype=dtype)


def reference_detector_names() -> tuple[str, ...]:
    """The registered detectors scored against the reference (`reference = True`)."""
    from canary.detectors import detectors

    return tuple(n for n in detectors.names() if getattr(detectors.get(n), "reference", False))


def reference_kinds() -> tuple[str, ...]:
    """Probe kinds whose checks need a reference: topk, routing, sampling, and those of any
    plugin detector that declares `reference = True`."""
    from canary.detectors import detectors

    kinds = dict.fromkeys((*TOPK_KINDS, *SAMPLING_KINDS))
    for name in reference_detector_names():
        declared = getattr(detectors.get(name), "kinds", ())
        kinds.update(dict.fromkeys(k for k in declared if k != "*"))
    return tuple(kinds)


@dataclass
class ReferenceScorer:
    """Scores reference-dependent probes; a model reference is loaded on first need, once.

    ``chat_templates`` maps endpoint names to their own `chat_template:` (it overrides the
    reference's for that endpoint's chat probes).
    """

    store: Store
    reference: ReferenceConfig = SHIPPED_REFERENCE
    chat_templates: Mapping[str, str] = field(default_factory=dict)
    _model: ReferenceModel | None = None
    _flavours: dict[int, str] | None = None
    _names: dict[int, str] | None = None
    _fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> ReferenceModel:
        if self._model is None:
            ref = self.reference
            self._model = shared_reference_model(ref.model, ref.device, ref.dtype)
        return self._model

    def score(self, results: ResultFilter | None = None) -> list[ScoreToSave]:
        """Score the reference-dependent probes among the stored `results` (default: all)
        against the reference model (an endpoint reference: `judge_against_reference`)."""
        assert self.reference.endpoint is None, "use judge_against_reference"
        from canary.store.scores import save_scores, scorable_batches

        probes = ProbeCache(self.store)
        saved: list[ScoreToSave] = []
        for batch in scorable_batches(self.store, results, kinds=TOPK_KINDS):
            probes.load(r.probe_row_id for r in batch)
            greedy = [r for r in batch if probes.get(r.probe_row_id).params.temperature == 0]
            scores = self._score_topk(greedy, probes)
            save_scores(self.store, scores)
            saved += scores
        groups: dict[tuple[int, int, int], list[ScorableResult]] = defaultdict(list)
        for batch in scorable_batches(
            self.store, results, kinds=SAMPLING_KINDS, include_pruned=True
        ):
            probes.load(r.probe_row_id for r in batch)
            for r in batch:
                groups[(r.run_id, r.endpoint_id, r.probe_row_id)].append(r)
        scores = []
        for (_, _, probe_row_id), members in groups.items():
            # A partly pruned group (the rest are alert evidence or younger than the cutoff)
            # cannot be judged again; its members keep the scores the whole group earned.
            if any(r.pruned for r in members):
                continue
            scores += self._score_sampling(probes.get(probe_row_id), members)
        save_scores(self.store, scores)
        return saved + scores

    @property
    def flavours(self) -> dict[int, str]:
        """Endpoint row id → API flavour, read once per scoring pass."""
        if self._flavours is None:
            from canary.store.scores import endpoint_flavours

            self._flavours = endpoint_flavours(self.store)
        return self._flavours

    def _template_spec(self, endpoint_id: int) -> str | None:
        """The chat template this endpoint applies: its own, else the reference's."""
        if self._names is None:
            from canary.store.scores import endpoint_names

            self._names = endpoint_names(self.store)
        own = self.chat_templates.get(self._names.get(endpoint_id, ""))
        return own if own is not None else self.reference.chat_template

    def rendered(self, probe: Probe, endpoint_id: int) -> tuple[str, str | None]:
        """The prompt the endpoint's model saw, and the chat template's label (None: none)."""
        flavour = self.flavours.get(endpoint_id, "")
        spec = self._template_spec(endpoint_id)
        label = self.model.template(spec).label if "chat" in flavour else None
        return self.model.render(probe, flavour, spec), label

    def record_spec(self, name: str, version: str, args: dict[str, Any]) -> str:
        """The detector's fingerprint, its arguments stored the first time they are seen."""
        key = name + json.dumps(args, sort_keys=True)
        if key not in self._fingerprints:
            from canary.detectors import DetectorSpec
            from canary.store.scores import record_detector_specs

            spec = DetectorSpec(name, version, args)
            record_detector_specs(self.store, [(name, spec.fingerprint, version, args)])
            self._fingerprints[key] = spec.fingerprint
        return self._fingerprints[key]

    def args(self, label: str | None, **extra: Any) -> dict[str, Any]:
        # fp32 keeps the arguments scores had before, so stored baselines stay comparable: the
        # dtype is in the model fingerprint, and the chat template is added where one other
        # than canary's own transcript (what chat probes were always rendered with) applied.
        args: dict[str, Any] = {"reference": self.model.fingerprint, **extra}
        if label is not None and label != "transcript":
            args["chat_template"] = label
        return args

    def _score_topk(
        self, results: Sequence[ScorableResult], probes: ProbeCache
    ) -> list[ScoreToSave]:
        from canary.detectors.model_equality import ModelEquality
        from canary.detectors.topk import DEFAULT_MIN_GAP_NATS, compare_to_reference
        from canary.reference import ReferenceRunner
        from canary.store.scores import ScoreToSave
        from canary.store.views import tokens_from_json

        judged = [r for r in results if r.error_kind is None]
        if not judged:
            return []
        runner = ReferenceRunner(self.model, self.store)
        # One reference output per (rendered prompt, max_tokens): what the endpoint's model saw.
        keys: dict[int, tuple[str, int]] = {}
        labels: dict[int, str | None] = {}
        for r in judged:
            probe = probes.get(r.probe_row_id)
            prompt, labels[r.result_id] = self.rendered(probe, r.endpoint_id)
            keys[r.result_id] = (prompt, probe.params.max_tokens)
        reference = {}
        for max_tokens in sorted({k[1] for k in keys.values()}):
            prompts = sorted({k[0] for k in keys.values() if k[1] == max_tokens})
            outputs = runner.greedy(prompts, max_tokens=max_tokens, top_logprobs=5)
            reference.update({(p, max_tokens): o for p, o in zip(prompts, outputs, strict=True)})
        equality = ModelEquality()
        scores: list[ScoreToSave] = []
        for r in judged:
            ref = reference[keys[r.result_id]]
            label = labels[r.result_id]
            fingerprint = self.record_spec(
                "topk", TOPK_VERSION, self.args(label, min_gap_nats=DEFAULT_MIN_GAP_NATS)
            )
            tokens = tokens_from_json(r.tokens)
            agreement = compare_to_reference(tokens, ref.tokens, r.output_text, ref.text)
            for s in agreement.to_scores():
                scores.append(
                    ScoreToSave(
                        r.result_id, "topk", fingerprint, s.metric, s.value, s.flagged, s.evidence
                    )
                )
            # The same greedy reference output, read as distributions: is it the same model?
            fingerprint = self.record_spec(
                equality.name,
                equality.version,
                self.args(label, max_kl=equality.max_kl, min_positions=equality.min_positions),
            )
            for s in equality.score_tokens(tokens or [], ref.tokens):
                scores.append(
                    ScoreToSave(
                        r.result_id,
                        equality.name,
                        fingerprint,
                        s.metric,
                        s.value,
                        s.flagged,
                        s.evidence,
                    )
                )
        return scores

    def _score_sampling(self, probe: Probe, members: Sequence[ScorableResult]) -> list[ScoreToSave]:
        from canary.store.scores import ScoreToSave
        from canary.store.views import tokens_from_json

        firsts: list[tuple[ScorableResult, str]] = []
        for r in members:
            token = first_token_key(tokens_from_json(r.tokens)) if r.error_kind is None else None
            if token is not None:
                firsts.append((r, token))
        if len(firsts) < 2:
            return []
        params = probe.params
        prompt, label = self.rendered(probe, members[0].endpoint_id)
        expected_p = self.model.next_token_distribution(
            prompt, params.temperature, params.top_p, params.top_k
        )
        if any(token == PARTIAL for _, token in firsts):  # bytes unknown: compare the bin
            expected_p = merge_partial(expected_p)
            firsts = [(r, PARTIAL if t.startswith("<0x") else t) for r, t in firsts]
        fingerprint = self.record_spec(
            "sampling",
            SAMPLING_VERSION,
            self.args(label, alpha=SAMPLING_ALPHA, min_expected=MIN_EXPECTED),
        )
        scores: list[ScoreToSave] = []
        for r, token in firsts:
            # The token itself, so `compare` can test first-token distributions in SQL.
            scores.append(
                ScoreToSave(
                    r.result_id,
                    "sampling",
                    fingerprint,
                    "sampling_first_token",
                    None,
                    False,
                    {"token": token},
                )
            )
            impossible = expected_p.get(token, 0.0) == 0.0
            evidence: dict[str, Any] = {
                "token": token,
                "reason": "outside the reference's top-k/top-p support",
            }
            scores.append(
                ScoreToSave(
                    r.result_id,
                    "sampling",
                    fingerprint,
                    "first_token_out_of_support",
                    float(impossible),
                    impossible,
                    evidence if impossible else None,
                )
            )
        fit = fit_to_distribution([t for _, t in firsts], expected_p)
        scores.append(
            ScoreToSave(
                firsts[0][0].result_id,
                "sampling",
                fingerprint,
                "sampling_fit_p",
                fit.p_value,
                fit.flagged,
                fit.evidence,
            )
        )
        return scores
