"""A trusted endpoint of the fleet as the reference, for a model no local copy of fits.

Each result of another endpoint is judged against the reference endpoint's stored result for
the same probe row (same prompt, same parameters) from the nearest run: greedy `topk`/`routing`
outputs with the same top-token metrics and evidence as against a model, `sampling` groups by
a two-sample test of their first tokens against the reference endpoint's samples. The reference
endpoint's own results are never judged against themselves, nor are those of an endpoint of
the other API family (a chat endpoint's model sees a templated prompt, a completions
endpoint's the prompt itself: their outputs for one probe are not meant to agree).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from canary.records import ResultFilter
from canary.scoring.kinds import SAMPLING_KINDS, TOPK_KINDS
from canary.scoring.probes import ProbeCache
from canary.scoring.sampling_fit import (
    MIN_EXPECTED,
    SAMPLING_ALPHA,
    first_token_key,
    fit_to_samples,
)

if TYPE_CHECKING:
    from canary.records import TokenLogprob
    from canary.store import Store
    from canary.store.scores import ScorableResult, ScoreToSave

#: Scores made against an endpoint carry this version, apart from those against a model.
ENDPOINT_TOPK_VERSION = "3"
ENDPOINT_SAMPLING_VERSION = "2"


@dataclass(frozen=True)
class _Stored:
    run_id: int
    text: str
    tokens: list[TokenLogprob]


class EndpointReferenceScorer:
    """Scores topk/routing and sampling results against the endpoint called ``name``."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name

    def score(self, results: ResultFilter | None = None) -> list[ScoreToSave]:
        from canary.store.scores import (
            endpoint_flavours,
            endpoint_names,
            save_scores,
            scorable_batches,
        )

        ids = [i for i, n in endpoint_names(self.store).items() if n == self.name]
        if not ids:
            return []  # the reference endpoint never answered: nothing to judge against
        ref_id = ids[0]
        flavours = endpoint_flavours(self.store)
        chat = "chat" in flavours.get(ref_id, "")
        judged = {i for i, f in flavours.items() if i != ref_id and ("chat" in f) == chat}
        probes = ProbeCache(self.store)
        greedy: list[ScorableResult] = []
        for batch in scorable_batches(self.store, results, kinds=TOPK_KINDS):
            probes.load(r.probe_row_id for r in batch)
            greedy += [
                r
                for r in batch
                if r.endpoint_id in judged
                and r.error_kind is None
                and probes.get(r.probe_row_id).params.temperature == 0
            ]
        groups: dict[tuple[int, int, int], list[ScorableResult]] = defaultdict(list)
        for batch in scorable_batches(
            self.store, results, kinds=SAMPLING_KINDS, include_pruned=True
        ):
            for r in batch:
                if r.endpoint_id in judged:
                    groups[(r.run_id, r.endpoint_id, r.probe_row_id)].append(r)
        wanted = {r.probe_row_id for r in greedy} | {k[2] for k in groups}
        stored = self._reference_results(wanted)
        scores = self._score_topk(greedy, stored)
        for (run_id, _, probe_row_id), members in groups.items():
            if not any(r.pruned for r in members):
                scores += self._score_sampling(run_id, members, stored.get(probe_row_id, {}))
        save_scores(self.store, scores)
        return scores

    def _reference_results(self, probe_row_ids: set[int]) -> dict[int, dict[int, list[_Stored]]]:
        """The reference endpoint's successful results: probe row → run → results."""
        from canary.store.scores import scorable_batches
        from canary.store.views import tokens_from_json

        out: dict[int, dict[int, list[_Stored]]] = defaultdict(lambda: defaultdict(list))
        filt = ResultFilter(labels={"endpoint": self.name})
        for batch in scorable_batches(self.store, filt, kinds=(*TOPK_KINDS, *SAMPLING_KINDS)):
            for r in batch:
                if r.probe_row_id in probe_row_ids and r.error_kind is None:
                    tokens = tokens_from_json(r.tokens) or []
                    out[r.probe_row_id][r.run_id].append(
                        _Stored(r.run_id, r.output_text or "", tokens)
                    )
        return out

    def _fingerprint(self, name: str, version: str, args: dict[str, Any]) -> str:
        from canary.detectors import DetectorSpec
        from canary.store.scores import record_detector_specs

        spec = DetectorSpec(name, version, args)
        record_detector_specs(self.store, [(name, spec.fingerprint, version, args)])
        return spec.fingerprint

    def _score_topk(
        self, results: Sequence[ScorableResult], stored: dict[int, dict[int, list[_Stored]]]
    ) -> list[ScoreToSave]:
        from canary.detectors.model_equality import ModelEquality
        from canary.detectors.topk import DEFAULT_MIN_GAP_NATS, compare_to_reference
        from canary.store.scores import ScoreToSave
        from canary.store.views import tokens_from_json

        if not results:
            return []
        fingerprint = self._fingerprint(
            "topk",
            ENDPOINT_TOPK_VERSION,
            {"reference_endpoint": self.name, "min_gap_nats": DEFAULT_MIN_GAP_NATS},
        )
        # Both sides' top-k, position by position along the shared greedy prefix.
        equality = ModelEquality()
        equality_fingerprint = self._fingerprint(
            equality.name,
            equality.version,
            {
                "reference_endpoint": self.name,
                "max_kl": equality.max_kl,
                "min_positions": equality.min_positions,
            },
        )
        scores: list[ScoreToSave] = []
        for r in results:
            by_run = stored.get(r.probe_row_id)
            if not by_run:
                continue  # the reference endpoint has no answer to this probe yet
            ref = by_run[_nearest(by_run, r.run_id)][0]
            tokens = tokens_from_json(r.tokens)
            judged = [
                ("topk", fingerprint, s)
                for s in compare_to_reference(
                    tokens, ref.tokens, r.output_text, ref.text
                ).to_scores()
            ]
            judged += [
                (equality.name, equality_fingerprint, s)
                for s in equality.score_tokens(tokens or [], ref.tokens)
            ]
            for detector, print_, s in judged:
                evidence = dict(s.evidence or {}) or None
                if evidence is not None:
                    evidence["reference_endpoint"] = self.name
                scores.append(
                    ScoreToSave(
                        r.result_id, detector, print_, s.metric, s.value, s.flagged, evidence
                    )
                )
        return scores

    def _score_sampling(
        self, run_id: int, members: Sequence[ScorableResult], by_run: dict[int, list[_Stored]]
    ) -> list[ScoreToSave]:
        from canary.store.scores import ScoreToSave
        from canary.store.views import tokens_from_json

        firsts: list[tuple[ScorableResult, str]] = []
        for r in members:
            token = first_token_key(tokens_from_json(r.tokens)) if r.error_kind is None else None
            if token is not None:
                firsts.append((r, token))
        if len(firsts) < 2 or not by_run:
            return []
        ref_tokens = [
            t for s in by_run[_nearest(by_run, run_id)] if (t := first_token_key(s.tokens))
        ]
        if len(ref_tokens) < 2:
            return []
        fingerprint = self._fingerprint(
            "sampling",
            ENDPOINT_SAMPLING_VERSION,
            {
                "reference_endpoint": self.name,
                "alpha": SAMPLING_ALPHA,
                "min_expected": MIN_EXPECTED,
            },
        )
        scores = [
            ScoreToSave(
                r.result_id,
                "sampling",
                fingerprint,
                "sampling_first_token",
                None,
                False,
                {"token": token},
            )
            for r, token in firsts
        ]
        fit = fit_to_samples([t for _, t in firsts], ref_tokens)
        evidence = {**fit.evidence, "reference_endpoint": self.name}
        scores.append(
            ScoreToSave(
                firsts[0][0].result_id,
                "sampling",
                fingerprint,
                "sampling_fit_p",
                fit.p_value,
                fit.flagged,
                evidence,
            )
        )
        return scores


def _nearest(by_run: dict[int, list[_Stored]], run_id: int) -> int:
    """The run of the reference endpoint closest to ``run_id`` (the same run when it has one;
    on a tie, the earlier)."""
    return min(by_run, key=lambda other: (abs(other - run_id), other))
