"""Run the registered detectors over stored results and store their scores.

Scoring reads results in id-ordered batches and upserts scores batch by batch, so it runs in
constant memory and can re-score months of history (`canary score --since 30d`) after a detector
changes. Per-result detectors come from `canary.detectors`; detectors that need the whole group
of repeats are in `canary.scoring.groups`, those that need the reference model in
`canary.scoring.reference` (which this module imports, never the other way round).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from canary.records import ResultFilter
from canary.scoring.probes import ProbeCache

if TYPE_CHECKING:
    from canary.config.reference import ReferenceConfig
    from canary.detectors import Score
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
    reference: str | None = None
    """What reference-based checks were judged against (`describe_reference`); None: nothing."""
    unjudged: int = 0
    """Results of reference-kind probes not judged because no reference is configured."""
    phases: Mapping[str, float] = field(default_factory=dict)
    """Seconds per phase (`read`, `detect`, `write`, `groups`, `rollups`): where time goes."""
    detector_seconds: Mapping[str, float] = field(default_factory=dict)
    """Seconds spent inside each per-result detector's `score`, so overhead shows beside it."""
    memo_hits: int = 0
    """Results whose built-in detectors' scores were reused from an identical earlier result
    of the pass (`ScoreMemo`) instead of computed again."""

    @property
    def reference_note(self) -> str | None:
        """The one line to print when reference-based checks were not made."""
        if self.reference is not None or not self.unjudged:
            return None
        from canary.config.reference import NO_REFERENCE_HINT

        return f"{self.unjudged} results: {NO_REFERENCE_HINT}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "scores": self.scores,
            "seconds": round(self.seconds, 3),
            "reference": self.reference,
            "reference_note": self.reference_note,
            "memo_hits": self.memo_hits,
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
    reference: ReferenceConfig | bool | None = True,
    chat_templates: Mapping[str, str] | None = None,
    batch_size: int = 5000,
    memo: bool = True,
) -> ScoringReport:
    """Score the stored `results` (default: all) with ``detectors`` (default: all).

    ``reference`` judges greedy topk/routing probes, sampling probes and any detector with
    `reference = True`: a `ReferenceConfig` (what `resolve_reference` gives a fleet), True for
    the shipped tiny model (the simulated fleet's, kept as this function's default for library
    callers), None or False for none, when those checks are counted as not made
    (`ScoringReport.unjudged`), never computed against a model the fleet may not serve.
    ``chat_templates`` are the endpoints' own `chat_template:` by endpoint name.
    ``memo`` reuses the scores of a result identical to an earlier one (`ScoreMemo`); off,
    every detector runs on every result (the same scores, slower).
    """
    from canary.config.reference import describe_reference
    from canary.detectors import default_detector, result_detector_names
    from canary.scoring.groups import score_groups
    from canary.scoring.reference import SHIPPED_REFERENCE
    from canary.stats.summaries import summary_spec
    from canary.store.rollups import build_rollups, rollup_spec
    from canary.store.scores import record_detector_specs, save_scores, scorable_batches

    results = results or ResultFilter()
    judge: ReferenceConfig | None = SHIPPED_REFERENCE if reference is True else (reference or None)
    names = list(detectors) if detectors is not None else result_detector_names()
    built = [default_detector(name) for name in names]
    if judge is None:  # a result detector that needs the reference is not made without one
        built = [d for d in built if not getattr(d, "reference", False)]
    elif judge.model is not None:
        built = [_with_reference_tokens(d, judge) if d.name == "special_tokens" else d
                 for d in built]  # fmt: skip
    record_detector_specs(
        store, [(d.name, d.spec.fingerprint, d.version, d.spec.args) for d in built]
    )
    fingerprints = {d.name: d.spec.fingerprint for d in built}
    probes = ProbeCache(store)
    started = time.perf_counter()
    count = 0
    scored: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    phases: dict[str, float] = dict.fromkeys(("read", "detect", "write", "groups", "rollups"), 0.0)
    spent: dict[str, float] = dict.fromkeys(fingerprints, 0.0)
    remembered = ScoreMemo() if memo else None
    batches = scorable_batches(store, results, batch_size=batch_size)
    while True:
        mark = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            break
        probes.load(r.probe_row_id for r in batch)
        phases["read"] += (now := time.perf_counter()) - mark
        to_save = _score_batch(batch, probes, built, fingerprints, spent, remembered)
        phases["detect"] += (mark := time.perf_counter()) - now
        save_scores(store, to_save)
        phases["write"] += time.perf_counter() - mark
        count += len(batch)
        for s in to_save:
            scored[s.metric] += 1
            flagged[s.metric] += s.flagged
    mark = time.perf_counter()
    group_scores: list[ScoreToSave] = score_groups(store, results)
    unjudged = 0
    if judge is not None:
        group_scores += judge_against_reference(
            store, judge, results, chat_templates, likelihood="likelihood" in names
        )
    elif detectors is None:
        unjudged = count_unjudged_reference(store, results)
    for s in group_scores:
        scored[s.metric] += 1
        flagged[s.metric] += s.flagged
    phases["groups"] += (now := time.perf_counter()) - mark
    build_rollups(
        store, rollup_spec(summary_spec())
    )  # the runs whose scores changed, and new finished ones
    phases["rollups"] += time.perf_counter() - now
    return ScoringReport(
        results=count,
        scores=sum(scored.values()),
        seconds=time.perf_counter() - started,
        flagged=dict(flagged),
        scored=dict(scored),
        reference=describe_reference(judge) if judge is not None else None,
        unjudged=unjudged,
        phases=dict(phases),
        detector_seconds=spent,
        memo_hits=remembered.hits if remembered is not None else 0,
    )


def _with_reference_tokens(detector: Any, judge: ReferenceConfig) -> Any:
    """The special_tokens detector that also knows the reference tokenizer's special tokens
    (they are its arguments, so they show in the stored spec)."""
    from canary.detectors import build_detector
    from canary.detectors.special_tokens import tokenizer_special_tokens
    from canary.scoring.reference import shared_reference_model

    model = shared_reference_model(judge.model, judge.device, judge.dtype)
    tokens = tuple(dict.fromkeys((*detector.tokens, *tokenizer_special_tokens(model.tokenizer))))
    return build_detector("special_tokens", tokens=tokens)


def judge_against_reference(
    store: Store,
    reference: ReferenceConfig,
    results: ResultFilter | None = None,
    chat_templates: Mapping[str, str] | None = None,
    *,
    likelihood: bool = True,
) -> list[ScoreToSave]:
    """Score the reference-kind results among ``results`` against ``reference``: a model
    (`ReferenceScorer`) or a trusted endpoint (`EndpointReferenceScorer`). ``likelihood``
    also scores every output's likelihood under a model reference (`canary.scoring.likelihood`).
    """
    if reference.endpoint is not None:
        from canary.scoring.endpoint_reference import EndpointReferenceScorer

        return EndpointReferenceScorer(store, reference.endpoint).score(results)
    from canary.scoring.reference import ReferenceScorer

    scorer = ReferenceScorer(store, reference, dict(chat_templates or {}))
    scores = scorer.score(results)
    if likelihood:
        from canary.scoring.likelihood import score_likelihood

        scores += score_likelihood(scorer, results)
    return scores


def count_unjudged_reference(store: Store, results: ResultFilter | None = None) -> int:
    """Results of reference-kind probes among ``results`` with no reference-based score."""
    from canary.scoring.reference import reference_detector_names, reference_kinds
    from canary.store.scores import count_unjudged

    return count_unjudged(store, results, reference_kinds(), reference_detector_names())


def missing_reference_note(store: Store, results: ResultFilter | None = None) -> str | None:
    """The note `compare` and `report` show when the selected results include reference-kind
    probes that have no reference scores (no reference was configured when they were scored)."""
    from canary.config.reference import NO_REFERENCE_HINT

    n = count_unjudged_reference(store, results)
    return f"{n} results without reference scores: {NO_REFERENCE_HINT}" if n else None


#: Results whose scores a pass remembers; the least recently seen are forgotten first. An
#: entry holds ~2.4 kB (measured: the built-ins' scores of one benchmark output): ~50 MB full,
#: and a fleet's repeating greedy answers are far fewer than this.
MEMO_SIZE = 20_000

Outputs = list[tuple[str, list["Score"]]]
"""(detector name, its scores) for each detector that applies to a result."""


class ScoreMemo:
    """Per-result detector outputs of one scoring pass, by what the detectors read.

    Canary probes are fixed prompts, and a healthy fleet answers a greedy probe the same way
    round after round: most results repeat an earlier (probe, output) exactly, and detectors
    are pure functions of their `ScoringInput`, so the scores of a repeat are already known.
    A bounded LRU keeps memory flat on a fleet whose outputs never repeat.
    """

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, Outputs] = OrderedDict()
        self.hits = 0
        """Lookups answered from the memo."""

    def get(self, key: bytes) -> Outputs | None:
        """The outputs remembered under ``key``, or None."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: bytes, outputs: Outputs) -> None:
        """Remember ``outputs`` under ``key``, forgetting the least recently used past size."""
        self._entries[key] = outputs
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


def memo_key(r: ScorableResult) -> bytes:
    """A digest of everything a per-result detector reads of ``r``: its probe row (the probe),
    output text, error kind, finish reason and the stored tokens and tool calls as raw JSON.

    Digested so an entry costs 16 bytes of key, not a copy of the text and tokens; a 128-bit
    BLAKE2 collision among a pass's results is not a practical concern. The JSON encoding is
    unambiguous, so equal digests mean equal inputs (key order in a stored object can only
    make two equal inputs miss, never make two different ones meet).
    """
    raw = [r.probe_row_id, r.output_text, r.error_kind, r.finish_reason, r.tokens, r.tool_calls]
    return hashlib.blake2b(json.dumps(raw, default=repr).encode(), digest_size=16).digest()


def _pure(detector: Any) -> bool:
    """Whether ``detector``'s outputs may be reused: the built-ins are pure functions of their
    input (no randomness, clock or state; their caches only memoise compiled patterns). A
    plugin's purity is not known, so it runs on every result."""
    return type(detector).__module__.startswith("canary.detectors.")


def _score_batch(
    batch: list[ScorableResult],
    probes: ProbeCache,
    built: list[Any],
    fingerprints: Mapping[str, str],
    spent: dict[str, float],
    memo: ScoreMemo | None = None,
) -> list[ScoreToSave]:
    from canary.store.scores import ScoreToSave

    plans: dict[int, tuple[list[Any], list[Any]]] = {}
    out: list[ScoreToSave] = []
    for r in batch:
        plan = plans.get(r.probe_row_id)
        if plan is None:
            applicable = [d for d in built if d.applies_to(probes.get(r.probe_row_id))]
            if memo is None:
                plan = plans[r.probe_row_id] = ([], applicable)
            else:
                plan = plans[r.probe_row_id] = (
                    [d for d in applicable if _pure(d)],
                    [d for d in applicable if not _pure(d)],
                )
        reusable, always = plan
        outputs: Outputs | None = None
        key = memo_key(r) if memo is not None and reusable else None
        if key is not None and memo is not None:
            outputs = memo.get(key)
        if outputs is None:
            outputs = _run(r, probes, reusable, spent)
            if key is not None and memo is not None:
                memo.put(key, outputs)
        if always:
            outputs = outputs + _run(r, probes, always, spent)
        # Rows of a hit share the Score objects (and evidence dicts) of the first result:
        # save_scores only serialises them, and nothing after it mutates a ScoreToSave.
        for name, scores in outputs:
            fingerprint = fingerprints[name]
            out += [
                ScoreToSave(
                    r.result_id, name, fingerprint, s.metric, s.value, s.flagged, s.evidence
                )
                for s in scores
            ]
    return out


def _run(
    r: ScorableResult, probes: ProbeCache, detectors: Sequence[Any], spent: dict[str, float]
) -> Outputs:
    """Every detector of ``detectors`` on ``r``, timed into ``spent``."""
    from canary.detectors import ScoringInput
    from canary.store.views import tokens_from_json, tool_calls_from_json

    if not detectors:
        return []
    inp = ScoringInput(
        probe=probes.get(r.probe_row_id),
        output_text=r.output_text,
        error_kind=r.error_kind,
        tokens=tokens_from_json(r.tokens),
        finish_reason=r.finish_reason,
        tool_calls=tool_calls_from_json(r.tool_calls),
    )
    clock = time.perf_counter
    outputs: Outputs = []
    for detector in detectors:
        mark = clock()
        scores = detector.score(inp)
        spent[detector.name] += clock() - mark
        outputs.append((detector.name, scores))
    return outputs
