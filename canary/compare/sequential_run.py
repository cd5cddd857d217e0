"""`gate_rounds`: run rounds, read what the store holds after each, and let the sequential gate
decide (what `canary gate` calls).

The before side is any `compare` selector; the after side is the runs this gate started. After
every round both sides are aggregated in SQL as `compare` does, and, when the before side is
stored results of the same suite version, matched probe by probe (`canary.store.pairs`): the
paired design is used where that pairing exists. Running a round is the caller's (the CLI passes
the pipeline's `run_and_judge`): this layer only reads.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from canary.compare.aggregate import Aggregate, aggregate
from canary.compare.gate import pair_cohorts
from canary.compare.run import resolve
from canary.compare.selectors import parse_selector
from canary.compare.sequential_gate import (
    GateDecision,
    Key,
    MetricEvidence,
    SequentialGate,
    Stop,
)
from canary.errors import ConfigError
from canary.records import ERROR_RATE, ResultFilter
from canary.stats import Binning, MetricPolicy
from canary.stats.anytime import Sample
from canary.stats.kinds import Histogram, MetricStats, RateCounts
from canary.store import Store


def _unit(stats: MetricStats) -> tuple[Sample, float, tuple[float, float]] | None:
    """The statistics on [0, 1], metric units per unit, and the (lo, hi) they were rescaled by;
    None for what the betting tests do not take (log bins, category mixes)."""
    if isinstance(stats, RateCounts):
        return Sample.rate(stats.k, stats.n), 1.0, (0.0, 1.0)
    if isinstance(stats, Histogram) and stats.binning and stats.counts is not None:
        binning = Binning.model_validate(stats.binning)
        if binning.scale != "linear":
            return None
        edges = binning.edges()
        mids = [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)]
        width = binning.hi - binning.lo
        values = [(m - binning.lo) / width for m in mids]
        return Sample.of(values, stats.counts), width, (binning.lo, binning.hi)
    return None


def evidence(
    before: Aggregate,
    after: Aggregate,
    policies: Mapping[str, MetricPolicy],
    pairs: Mapping[Key, Sample] | None = None,
) -> tuple[dict[Key, MetricEvidence], list[str]]:
    """Every shared cohort × metric as the sequential gate's evidence, and notes for the
    metrics it cannot take (they are left to `canary compare`).

    Cohorts the after side never probed (not selected) are not part of the gate. A critical
    metric with data on one side only is handed over with an empty side, so it stays
    undecided and the gate cannot pass without it; a non-critical one is a note.
    `NotComparable` when a metric was scored by different detector versions on the two sides.
    """
    from canary.compare.gate import NotComparable

    out: dict[Key, MetricEvidence] = {}
    notes: list[str] = []
    for name, b_key, a_key in pair_cohorts(before, after):
        b, a = before.cohorts[b_key], after.cohorts[a_key]
        if not a.metrics:
            continue
        for metric in sorted(set(b.metrics) | set(a.metrics)):
            policy = policies.get(metric)
            if policy is None:
                continue
            if metric not in b.metrics or metric not in a.metrics:
                present = b.metrics.get(metric) or a.metrics[metric]
                side = "before" if metric in a.metrics else "after"
                unit = _unit(present)
                if policy.critical and unit is not None:
                    empty = Sample.of([], [])
                    one, scale = unit[0], unit[1]
                    pair = (one, empty) if side == "after" else (empty, one)
                    out[(name, metric)] = MetricEvidence(policy, *pair, None, scale)
                notes.append(f"{name}/{metric}: no data {side}")
                continue
            fb, fa = b.metrics[metric].fingerprints, a.metrics[metric].fingerprints
            if (fb and fa and fb != fa) or len(fa) > 1:
                raise NotComparable(
                    f"cohort {name}: {metric} was scored by detector version "
                    f"{','.join(sorted(fb))} before and {','.join(sorted(fa))} after; "
                    "re-score both sides with `canary score --since …`"
                )
            ub, ua = _unit(b.metrics[metric]), _unit(a.metrics[metric])
            if ub is None or ua is None or ub[2] != ua[2]:
                notes.append(f"{name}/{metric}: not tested sequentially ({policy.kind})")
                continue
            out[(name, metric)] = MetricEvidence(
                policy, ub[0], ua[0], (pairs or {}).get((name, metric)), ub[1]
            )
    return out, notes


def paired_samples(
    store: Store,
    before: ResultFilter,
    after: ResultFilter,
    agg_before: Aggregate,
    agg_after: Aggregate,
    policies: Mapping[str, MetricPolicy],
) -> dict[Key, Sample]:
    """Matched after − before differences, as (D + 1) / 2, per cohort × metric: the j-th after
    result of a probe against the j-th before result of that probe and suite version."""
    from canary.detectors import declared_metrics
    from canary.store.pairs import probe_scores

    declared = declared_metrics()
    metrics = [m for m in policies if m in declared and declared[m].source == "score"]
    scale: dict[str, tuple[float, float]] = {}
    for m in metrics:
        bins = declared[m].binning
        if policies[m].kind == "rate":
            scale[m] = (0.0, 1.0)
        elif bins is not None and bins.scale == "linear":
            scale[m] = (bins.lo, bins.hi)
    names: dict[tuple[str, int], str] = {}
    for name, b_key, a_key in pair_cohorts(agg_before, agg_after):
        for cid in agg_before.cohorts[b_key].cohort_ids:
            names[("b", cid)] = name
        for cid in agg_after.cohorts[a_key].cohort_ids:
            names[("a", cid)] = name
    runs: dict[str, dict[tuple[str, str, str, str, str], list[float]]] = {}
    for side, filt in (("b", before), ("a", after)):
        bucket: dict[tuple[str, str, str, str, str], list[float]] = defaultdict(list)
        for row in probe_scores(store, filt, list(scale)):
            cohort = names.get((side, row.cohort_id))
            if cohort is None:
                continue
            lo, hi = scale[row.metric]
            if policies[row.metric].kind == "rate":
                x = 1.0 if row.flagged else 0.0
            elif row.value is None:
                continue
            else:
                x = min(1.0, max(0.0, (row.value - lo) / (hi - lo)))
            bucket[(cohort, row.metric, row.suite, row.suite_version, row.probe_key)].append(x)
        runs[side] = bucket
    diffs: dict[Key, list[float]] = defaultdict(list)
    for slot, xs_a in runs["a"].items():
        xs_b = runs["b"].get(slot, [])
        for xb, xa in zip(xs_b, xs_a, strict=False):
            diffs[(slot[0], slot[1])].append((xa - xb + 1) / 2)
    return {key: Sample.of(ys) for key, ys in diffs.items() if ys}


def _probes(agg: Aggregate) -> int:
    counts = [c.metrics[ERROR_RATE].n for c in agg.cohorts.values() if ERROR_RATE in c.metrics]
    return max(counts, default=0)


def gate_rounds(
    store: Store,
    before: str,
    run_round: Callable[[], int | None],
    policies: Mapping[str, MetricPolicy],
    *,
    by: Sequence[str] = ("endpoint",),
    alpha: float = 0.05,
    max_probes: int = 4000,
    max_seconds: float | None = None,
    window: timedelta = timedelta(hours=24),
    suite: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_round: Callable[[int, GateDecision], None] | None = None,
) -> tuple[GateDecision, list[str]]:
    """Run rounds (``run_round`` sends one and returns its run id, None to stop) until the
    sequential gate decides or the budget ends; the decision and notes."""
    now = datetime.now(UTC)
    selector = parse_selector(before, "before", window=window, now=now)
    if suite is not None and selector.filter is not None:
        selector = replace(selector, filter=replace(selector.filter, suites=(suite,)))
    by = tuple(by)
    agg_b, filt_b = resolve(store, selector, "before", by, policies, window)
    if not agg_b.cohorts:
        raise ConfigError(f"--before {before!r} selects no stored results; run the suite first")
    if selector.baseline is not None:
        by = agg_b.by
    if filt_b is not None and filt_b.until is None:
        # The gate's own rounds match an open-ended label selector: the before side ends now.
        filt_b = replace(filt_b, until=now)
    gate = SequentialGate(policies, alpha, budget=max_probes)
    start = clock()
    run_ids: list[int] = []
    notes: list[str] = []
    stop: Stop = "budget"
    probes = 0
    while True:
        run_id = run_round()
        if run_id is None:
            stop = "exhausted"
            break
        run_ids.append(run_id)
        filt_a = ResultFilter(run_ids=tuple(run_ids), suites=(suite,) if suite else ())
        agg_a = aggregate(store, filt_a, by, policies)
        pairs = (
            paired_samples(store, filt_b, filt_a, agg_b, agg_a, policies)
            if filt_b is not None
            else None
        )
        found, notes = evidence(agg_b, agg_a, policies, pairs)
        probes = _probes(agg_a)
        gate.look(found, probes)
        decision = _decision(gate, "budget", probes, len(run_ids), clock() - start)
        if on_round is not None:
            on_round(len(run_ids), decision)
        if gate.done():
            stop = gate.stop_reason()
            break
        if probes >= max_probes or (max_seconds is not None and clock() - start >= max_seconds):
            break
    return _decision(gate, stop, probes, len(run_ids), clock() - start), notes


def _decision(
    gate: SequentialGate, stop: Stop, probes: int, rounds: int, seconds: float
) -> GateDecision:
    return GateDecision(
        status=gate.status(),
        stop=stop,
        probes=probes,
        rounds=rounds,
        seconds=seconds,
        verdicts=sorted(gate.latest.values(), key=lambda v: (v.cohort, v.metric)),
    )


__all__ = ["evidence", "gate_rounds", "paired_samples"]
