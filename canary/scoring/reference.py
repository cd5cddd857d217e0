"""Scoring against the reference model: top-token agreement and sampling-distribution fit.

Greedy `topk` and `routing` probes are compared position by position with the reference
model's fp32 greedy continuation (`canary.detectors.topk`); only a divergence where the reference
was confident is flagged, so honest bf16 near-ties are measured but not alarmed on. `sampling`
probes are judged as a group: the first tokens of n samples are G-tested against the reference's
temperature/top-k/top-p-filtered distribution, and a token the correct sampler could never draw
is flagged on its own. torch loads only when such results exist.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canary.scoring.probes import ProbeCache

if TYPE_CHECKING:
    from canary.probes.model import Probe
    from canary.records import ResultFilter
    from canary.reference import ReferenceModel
    from canary.store import Store
    from canary.store.scores import ScorableResult, ScoreToSave

TOPK_KINDS = ("topk", "routing")
SAMPLING_KINDS = ("sampling",)
TOPK_VERSION = "2"
SAMPLING_VERSION = "2"
#: A G-test p-value below this flags the sampling group (the stats layer applies FDR control).
SAMPLING_ALPHA = 1e-3
#: Expected count below which first tokens are pooled into one "other" bin for the G-test.
MIN_EXPECTED = 5.0


@functools.lru_cache(maxsize=2)
def shared_reference_model(path: Path | None) -> ReferenceModel:
    """One loaded reference model per path for the process: the daemon scores every round,
    and reloading the model for each round costs time and memory churn (`benchmarks/soak.py`
    measures the daemon's memory per round). The model is only read (inference)."""
    from canary.reference import ReferenceModel

    return ReferenceModel.load(path)


@dataclass
class ReferenceScorer:
    """Scores reference-dependent probes; loads the model on first need, once."""

    store: Store
    model_path: Path | None = None
    _model: ReferenceModel | None = None
    _flavours: dict[int, str] | None = None
    _fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> ReferenceModel:
        if self._model is None:
            self._model = shared_reference_model(self.model_path)
        return self._model

    def score(self, results: ResultFilter | None = None) -> list[ScoreToSave]:
        """Score the reference-dependent probes among the stored `results` (default: all)."""
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

    def _record_spec(self, name: str, version: str, args: dict[str, Any]) -> str:
        """The detector's fingerprint, its arguments stored the first time it is asked for."""
        if name not in self._fingerprints:
            from canary.detectors import DetectorSpec
            from canary.store.scores import record_detector_specs

            spec = DetectorSpec(name, version, args)
            record_detector_specs(self.store, [(name, spec.fingerprint, version, args)])
            self._fingerprints[name] = spec.fingerprint
        return self._fingerprints[name]

    def _score_topk(
        self, results: Sequence[ScorableResult], probes: ProbeCache
    ) -> list[ScoreToSave]:
        from canary.detectors.topk import DEFAULT_MIN_GAP_NATS, compare_to_reference
        from canary.reference import ReferenceRunner
        from canary.store.scores import ScoreToSave
        from canary.store.views import tokens_from_json

        judged = [r for r in results if r.error_kind is None]
        if not judged:
            return []
        model = self.model
        fingerprint = self._record_spec(
            "topk",
            TOPK_VERSION,
            {"reference": model.fingerprint, "min_gap_nats": DEFAULT_MIN_GAP_NATS},
        )
        runner = ReferenceRunner(model, self.store)
        flavours = self.flavours
        # One reference output per (rendered prompt, max_tokens): what the endpoint's model saw.
        keys = {
            r.result_id: (
                probes.get(r.probe_row_id).rendered_for(flavours.get(r.endpoint_id, "")),
                probes.get(r.probe_row_id).params.max_tokens,
            )
            for r in judged
        }
        reference = {}
        for max_tokens in sorted({k[1] for k in keys.values()}):
            prompts = sorted({k[0] for k in keys.values() if k[1] == max_tokens})
            outputs = runner.greedy(prompts, max_tokens=max_tokens, top_logprobs=5)
            reference.update({(p, max_tokens): o for p, o in zip(prompts, outputs, strict=True)})
        scores: list[ScoreToSave] = []
        for r in judged:
            ref = reference[keys[r.result_id]]
            agreement = compare_to_reference(
                tokens_from_json(r.tokens), ref.tokens, r.output_text, ref.text
            )
            for s in agreement.to_scores():
                scores.append(
                    ScoreToSave(
                        r.result_id, "topk", fingerprint, s.metric, s.value, s.flagged, s.evidence
                    )
                )
        return scores

    def _score_sampling(self, probe: Probe, members: Sequence[ScorableResult]) -> list[ScoreToSave]:
        from scipy.stats import power_divergence

        from canary.store.scores import ScoreToSave

        firsts: list[tuple[ScorableResult, str]] = []
        for r in members:
            token = _first_token(r) if r.error_kind is None else None
            if token is not None:
                firsts.append((r, token))
        if len(firsts) < 2:
            return []
        params = probe.params
        model = self.model
        flavour = self.flavours.get(members[0].endpoint_id, "")
        expected_p = model.next_token_distribution(
            probe.rendered_for(flavour), params.temperature, params.top_p, params.top_k
        )
        fingerprint = self._record_spec(
            "sampling",
            SAMPLING_VERSION,
            {"reference": model.fingerprint, "alpha": SAMPLING_ALPHA, "min_expected": MIN_EXPECTED},
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
        # A token outside the reference's support cannot come from a correct sampler: seeing one
        # is exact evidence (p = 0). The G-test judges the in-support tokens only, so impossible
        # tokens are never diluted among the legitimately rare ones in the pooled bin.
        outside = sum(1 for _, token in firsts if expected_p.get(token, 0.0) == 0.0)
        inside = [token for _, token in firsts if expected_p.get(token, 0.0) > 0.0]
        n = len(inside)
        observed: dict[str, int] = defaultdict(int)
        for token in inside:
            observed[token] += 1
        bins = [t for t, p in expected_p.items() if p * n >= MIN_EXPECTED]
        other_p = max(1.0 - sum(expected_p[t] for t in bins), 0.0)
        obs = [observed.get(t, 0) for t in bins] + [n - sum(observed.get(t, 0) for t in bins)]
        exp = [expected_p[t] * n for t in bins] + [other_p * n]
        if exp[-1] < 1e-9 and obs[-1] == 0:  # no pooled mass and nothing landed there
            obs.pop()
            exp.pop()
        if outside:
            p_value = 0.0
        elif len(obs) < 2 or n < 2:
            p_value = 1.0
        else:
            total = sum(exp)
            exp = [e * n / total for e in exp]  # exact totals for scipy
            p_value = float(power_divergence(obs, exp, lambda_="log-likelihood").pvalue)
        flagged = p_value < SAMPLING_ALPHA
        evidence = {
            "samples": len(firsts),
            "outside_support": outside,
            "bins": [
                {"token": t, "observed": o, "expected": round(e, 2)}
                for t, o, e in zip([*bins, "<other>"], obs, exp, strict=False)
            ][:12],
        }
        scores.append(
            ScoreToSave(
                firsts[0][0].result_id,
                "sampling",
                fingerprint,
                "sampling_fit_p",
                p_value,
                flagged,
                evidence,
            )
        )
        return scores


def _first_token(r: ScorableResult) -> str | None:
    if r.tokens:
        token = r.tokens[0].get("token")
        return str(token) if token is not None else None
    return None
