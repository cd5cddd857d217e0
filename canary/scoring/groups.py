"""Detectors that judge a group of results rather than one: repeats of the same probe.

A determinism probe is sent k times in one run; its outputs are only judgeable together. Each
result still gets its own scores (so rates, cohorts and evidence work like any other metric):
``distinct_outputs`` of its group, and ``majority_mismatch``, flagged when this result differs
from the group's most common output although the probe is greedy or seeded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from canary.store.models import ProbeRow, ResultRow

if TYPE_CHECKING:
    from canary.store import Store
    from canary.store.scores import ScoreToSave

DETERMINISM = ("determinism", "1")


def score_groups(
    store: Store,
    *,
    run_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[ScoreToSave]:
    """Score every group detector over the matching results; returns what was saved."""
    return score_determinism(store, run_id=run_id, since=since, until=until, labels=labels)


def score_determinism(
    store: Store,
    *,
    run_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[ScoreToSave]:
    from canary.detectors.determinism import summarize_repeats
    from canary.store.filters import result_filters
    from canary.store.scores import ScoreToSave, record_detector_specs, save_scores

    with store.engine.connect() as conn:
        where = result_filters(
            conn,
            run_ids=[run_id] if run_id is not None else [],
            since=since,
            until=until,
            labels=labels,
        )
        where.append(ProbeRow.kind == "determinism")
        rows = conn.execute(
            select(
                ResultRow.id,
                ResultRow.run_id,
                ResultRow.endpoint_id,
                ResultRow.probe_id,
                ResultRow.output_text,
                ResultRow.error_kind,
                ResultRow.pruned_at,
                ProbeRow.spec,
            )
            .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
            .where(*where)
        ).all()
    groups: dict[tuple[int, int, int], list[tuple[int, str | None]]] = defaultdict(list)
    specs: dict[int, dict[str, object]] = {}
    pruned: set[tuple[int, int, int]] = set()
    for result_id, run, endpoint, probe, text, error, pruned_at, spec in rows:
        groups[(run, endpoint, probe)].append((result_id, None if error else text))
        specs[probe] = spec
        if pruned_at is not None:
            pruned.add((run, endpoint, probe))
    # Retention removed some outputs (the rest are alert evidence or younger than the cutoff):
    # the group can no longer be judged, and its members keep the scores the whole group earned.
    for key in pruned:
        del groups[key]
    name, version = DETERMINISM
    fingerprint = f"{version}+group"
    record_detector_specs(store, [(name, fingerprint, version, {"group": "run,endpoint,probe"})])
    out: list[ScoreToSave] = []
    for (_, _, probe), members in groups.items():
        summary = summarize_repeats([text for _, text in members])
        if summary.repeats < 2:
            continue
        params = specs[probe].get("params") or {}
        assert isinstance(params, dict)
        expect_identical = float(params.get("temperature", 0.0)) == 0.0 or (
            params.get("seed") is not None
        )
        evidence = None
        if summary.distinct > 1:
            evidence = {"repeats": summary.repeats, "variants": [list(v) for v in summary.variants]}
        for result_id, text in members:
            if text is None:
                continue
            mismatch = text != summary.majority_output
            out.append(
                ScoreToSave(
                    result_id,
                    name,
                    fingerprint,
                    "distinct_outputs",
                    float(summary.distinct),
                    False,
                    None,
                )
            )
            out.append(
                ScoreToSave(
                    result_id,
                    name,
                    fingerprint,
                    "majority_mismatch",
                    float(mismatch),
                    expect_identical and mismatch,
                    evidence if mismatch else None,
                )
            )
    save_scores(store, out)
    return out
