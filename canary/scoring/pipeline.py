"""Run the registered detectors over stored results and store their scores.

Scoring reads results in id-ordered batches and upserts scores batch by batch, so it runs in
constant memory and can re-score months of history (`canary score --since 30d`) after a detector
changes. Per-result detectors come from `canary.detectors`; detectors that need the whole group
of repeats are in `canary.scoring.groups`, those that need the reference model in
`canary.scoring.reference` (which this module imports, never the other way round).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canary.records import ResultFilter
from canary.scoring.probes import ProbeCache

if TYPE_CHECKING:
    from canary.store import Store
    from canary.store.scores import ScorableResult, ScoreToSave


@dataclass(frozen=True)
class ScoringReport:
    """What a scoring pass did."""

    results: int
    scores: int
    seconds: float
    flagged: Mapping[str, int] = field(default_factory=dict)
    """Flagged results per metric."""
    scored: Mapping[str, int] = field(default_factory=dict)
    """Scored results per metric."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "scores": self.scores,
            "seconds": round(self.seconds, 3),
            "metrics": {
                m: {"scored": n, "flagged": self.flagged.get(m, 0)}
                for m, n in sorted(self.scored.items())
            },
        }


def score_stored(
    store: Store,
    results: ResultFilter | None = None,
    *,
    detectors: Iterable[str] | None = None,
    reference: bool = True,
    reference_model: Path | None = None,
    batch_size: int = 5000,
) -> ScoringReport:
    """Score the stored `results` (default: all) with ``detectors`` (default: all).

    With ``reference``, greedy topk/routing probes and sampling probes are also scored against
    the reference model (``reference_model``, default the shipped tiny model).
    """
    from canary.detectors import default_detector, result_detector_names
    from canary.scoring.groups import score_groups
    from canary.store.scores import record_detector_specs, save_scores, scorable_batches

    results = results or ResultFilter()
    names = list(detectors) if detectors is not None else result_detector_names()
    built = [default_detector(name) for name in names]
    record_detector_specs(
        store, [(d.name, d.spec.fingerprint, d.version, d.spec.args) for d in built]
    )
    fingerprints = {d.name: d.spec.fingerprint for d in built}
    probes = ProbeCache(store)
    started = time.perf_counter()
    count = 0
    scored: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for batch in scorable_batches(store, results, batch_size=batch_size):
        probes.load(r.probe_row_id for r in batch)
        to_save = _score_batch(batch, probes, built, fingerprints)
        save_scores(store, to_save)
        count += len(batch)
        for s in to_save:
            scored[s.metric] += 1
            flagged[s.metric] += s.flagged
    group_scores: list[ScoreToSave] = score_groups(store, results)
    if reference:
        from canary.scoring.reference import ReferenceScorer

        group_scores += ReferenceScorer(store, reference_model).score(results)
    for s in group_scores:
        scored[s.metric] += 1
        flagged[s.metric] += s.flagged
    return ScoringReport(
        results=count,
        scores=sum(scored.values()),
        seconds=time.perf_counter() - started,
        flagged=dict(flagged),
        scored=dict(scored),
    )


def _score_batch(
    batch: list[ScorableResult],
    probes: ProbeCache,
    built: list[Any],
    fingerprints: Mapping[str, str],
) -> list[ScoreToSave]:
    from canary.detectors import ScoringInput
    from canary.store.scores import ScoreToSave
    from canary.store.views import tokens_from_json

    out: list[ScoreToSave] = []
    for r in batch:
        probe = probes.get(r.probe_row_id)
        applicable = [d for d in built if d.applies_to(probe)]
        if not applicable:
            continue
        inp = ScoringInput(
            probe=probe,
            output_text=r.output_text,
            error_kind=r.error_kind,
            tokens=tokens_from_json(r.tokens),
            finish_reason=r.finish_reason,
        )
        for detector in applicable:
            for score in detector.score(inp):
                out.append(
                    ScoreToSave(
                        r.result_id,
                        detector.name,
                        fingerprints[detector.name],
                        score.metric,
                        score.value,
                        score.flagged,
                        score.evidence,
                    )
                )
    return out
