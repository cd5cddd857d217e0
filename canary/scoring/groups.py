"""Detectors that judge a group of results rather than one: repeats of the same probe.

A determinism probe is sent k times in one run; its outputs are only judgeable together. Every
registered `GroupDetector` that is not scored against the reference gets each complete group
(run × endpoint × probe) of the probe kinds it declares, through its ``score_group``; each result
still gets its own scores, so rates, cohorts and evidence work like any other metric.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canary.detectors import GroupDetector
    from canary.records import ResultFilter
    from canary.store import Store
    from canary.store.scores import ScorableResult, ScoreToSave


def score_groups(store: Store, results: ResultFilter | None = None) -> list[ScoreToSave]:
    """Score every group detector over the stored ``results`` (default: all); returns what was
    saved."""
    from canary.detectors import GroupDetector, default_detector, group_detector_names

    out: list[ScoreToSave] = []
    for name in group_detector_names():
        detector = default_detector(name)
        assert isinstance(detector, GroupDetector)
        if detector.reference or not detector.kinds:
            continue  # the reference scorer's, or a declaration of results-table metrics
        out += score_group_detector(store, detector, results)
    return out


def score_group_detector(
    store: Store, detector: GroupDetector, results: ResultFilter | None = None
) -> list[ScoreToSave]:
    """One group detector over every complete group of its probe kinds; saves the scores."""
    from canary.detectors import GroupMember
    from canary.scoring.probes import ProbeCache
    from canary.store.scores import (
        ScoreToSave,
        record_detector_specs,
        save_scores,
        scorable_batches,
    )
    from canary.store.views import tokens_from_json

    groups: dict[tuple[int, int, int], list[ScorableResult]] = defaultdict(list)
    probes = ProbeCache(store)
    kinds = sorted(detector.kinds)
    for batch in scorable_batches(store, results, kinds=kinds, include_pruned=True):
        probes.load(r.probe_row_id for r in batch)
        for r in batch:
            groups[(r.run_id, r.endpoint_id, r.probe_row_id)].append(r)
    fingerprint = detector.fingerprint
    spec = detector.spec
    record_detector_specs(store, [(detector.name, fingerprint, detector.version, spec.args)])
    out: list[ScoreToSave] = []
    for (_, _, probe_row_id), members in groups.items():
        # Retention removed some outputs (the rest are alert evidence or younger than the
        # cutoff): the group can no longer be judged; its members keep the scores it earned.
        if any(r.pruned for r in members):
            continue
        group = [
            GroupMember(r.result_id, r.output_text, r.error_kind, tokens_from_json(r.tokens))
            for r in members
        ]
        for result_id, score in detector.score_group(probes.get(probe_row_id), group):
            out.append(
                ScoreToSave(
                    result_id,
                    detector.name,
                    fingerprint,
                    score.metric,
                    score.value,
                    score.flagged,
                    score.evidence,
                )
            )
    save_scores(store, out)
    return out
