"""Reference likelihood of every output: word salad that no correct model would write.

Every character can be Latin and every word real, and the text still be nothing the model would
say. The reference's mean negative log-likelihood of the output, given the prompt the endpoint
saw, tells (`canary.detectors.likelihood`). It runs on every probe kind, after the greedy and
sampling checks, only where a local reference model judges the fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from canary.scoring.probes import ProbeCache

if TYPE_CHECKING:
    from canary.records import ResultFilter
    from canary.scoring.reference import ReferenceScorer
    from canary.store.scores import ScorableResult, ScoreToSave


def score_likelihood(
    scorer: ReferenceScorer, results: ResultFilter | None = None
) -> list[ScoreToSave]:
    """Score the stored `results` (default: all) with the reference-likelihood detector."""
    from canary.store.scores import save_scores, scorable_batches

    probes = ProbeCache(scorer.store)
    saved: list[ScoreToSave] = []
    for batch in scorable_batches(scorer.store, results):
        probes.load(r.probe_row_id for r in batch)
        judged = [r for r in batch if r.error_kind is None and (r.output_text or "").strip()]
        scores = _score(scorer, judged, probes)
        save_scores(scorer.store, scores)
        saved += scores
    return saved


def _score(
    scorer: ReferenceScorer, results: Sequence[ScorableResult], probes: ProbeCache
) -> list[ScoreToSave]:
    from canary.detectors.likelihood import ReferenceLikelihood
    from canary.reference import continuation_logprobs
    from canary.store.scores import ScoreToSave

    if not results:
        return []
    detector = ReferenceLikelihood()
    rendered = [scorer.rendered(probes.get(r.probe_row_id), r.endpoint_id) for r in results]
    pairs = [
        (prompt, r.output_text or "") for (prompt, _), r in zip(rendered, results, strict=True)
    ]
    logprobs = continuation_logprobs(scorer.model, pairs)
    scores: list[ScoreToSave] = []
    for r, (_, label), values in zip(results, rendered, logprobs, strict=True):
        fingerprint = scorer.record_spec(
            detector.name,
            detector.version,
            scorer.args(label, max_nll=detector.max_nll, min_tokens=detector.min_tokens),
        )
        for s in detector.score_logprobs(values):
            scores.append(
                ScoreToSave(
                    r.result_id,
                    detector.name,
                    fingerprint,
                    s.metric,
                    s.value,
                    s.flagged,
                    s.evidence,
                )
            )
    return scores
