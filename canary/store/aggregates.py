"""Per cohort × metric summaries of stored results, computed in SQL: every number is a GROUP BY.

One aggregation per kind of sufficient statistic, named in `AGGREGATIONS` (a metric kind's
`canary.stats.kinds.StatTest.aggregation` picks its own): flag counts (rates), fixed-bin
histograms (continuous metrics) and category counts (distributions). Each reads a metric from
its declared source: the detector's scores, or the results table itself (failed requests,
latency). Rows come back as plain values; folding them into statistics is the caller's.

Given a `RollupSpec`, the runs whose rollups are fresh under it and lie wholly inside the
window are read from `rollups` (`canary.store.rollups`: a whole week, day or hour inside the
window through its compacted sums, the other runs one by one), every other run from the raw
rows, and the two are added: the answer is the raw GROUP BY's, at a cost set by the number of
runs that have no rollup yet rather than by history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, distinct, func, select

from canary.records import ResultFilter
from canary.store.binning import Bins, bin_index
from canary.store.filters import filter_clauses
from canary.store.models import (
    CohortRow,
    ProbeRow,
    ResultRow,
    RollupRow,
    ScoreRow,
    SuiteRow,
)
from canary.store.repository import Store, matching_cohort_ids
from canary.store.rollups import (
    BINS,
    CATEGORIES,
    ERRORS,
    FLAGS,
    LATENCY,
    RollupSpec,
    RunSplit,
    split_runs,
)
from canary.store.rollups.read import rolled_buckets, rolled_counts

SCORES = "score"
RESULT_ERRORS = "result.error"
RESULT_LATENCY = "result.latency_ms"


@dataclass(frozen=True)
class MetricQuery:
    """One metric to aggregate: its name, where it is read, and its bins or category key."""

    metric: str
    source: str = SCORES
    bins: Bins | None = None
    category: str | None = None


@dataclass(frozen=True)
class CountRow:
    """Flagged of counted results (and sessions) of one cohort × metric × detector version."""

    cohort_id: int
    metric: str
    fingerprint: str
    n: int
    k: int
    sessions: int
    flagged_sessions: int


@dataclass(frozen=True)
class BinRow:
    """Values of one cohort × metric × detector version in bin ``index``."""

    cohort_id: int
    metric: str
    fingerprint: str
    index: int
    n: int


@dataclass(frozen=True)
class CategoryRow:
    """Scores of one cohort × ``metric@probe`` × detector version in one category."""

    cohort_id: int
    metric: str
    fingerprint: str
    category: str
    n: int


@dataclass
class Selection:
    """An open read of the results a filter selects, resolved to cohorts."""

    conn: Connection
    filt: ResultFilter
    cohorts: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """(cohort id, labels) of the cohorts carrying every label of the filter."""
    where: list[ColumnElement[bool]] = field(default_factory=list)
    spec: RollupSpec | None = None
    """The rollups' spec; none: every number is read from the raw rows."""
    split: RunSplit | None = None
    """Which runs (and compacted days) the rollups answer for; none without `spec`."""
    raw_runs: list[int] | None = None
    """With rollups: the runs that must still be read raw (no fresh rollup, or cut by the
    window); none when rollups are not in use."""

    def raw_where(self, rolled_up: bool) -> list[ColumnElement[bool]] | None:
        """WHERE clauses for the raw part of a metric: all of the selection when the metric is
        not ``rolled_up``, else only the runs without usable rollups (None: there are none)."""
        if not rolled_up or self.raw_runs is None:
            return self.where
        if not self.raw_runs:
            return None
        return [*self.where, ResultRow.run_id.in_(self.raw_runs)]

    def rollup_wheres(self, aggregation: str) -> list[list[ColumnElement[bool]]]:
        """WHERE clauses on `RollupRow`, one list per part (`RunSplit.parts`), for the
        rolled-up runs and days of the selected cohorts."""
        assert self.split is not None
        cohorts = RollupRow.cohort_id.in_([i for i, _ in self.cohorts])
        return [
            [RollupRow.aggregation == aggregation, part, cohorts] for part in self.split.parts()
        ]

    @property
    def uses_rollups(self) -> bool:
        return self.split is not None

    def suite_versions(self) -> list[tuple[int, str, str]]:
        """(cohort id, suite name, suite version) of every suite that ran."""
        found: set[tuple[int, str, str]] = set()
        for rows in self._suite_parts(SuiteRow.version, count=None):
            found.update((int(c), str(s), str(v)) for c, s, v, _ in rows)
        return sorted(found)

    def suite_results(self) -> dict[str, int]:
        """Suite name → results of it selected: whether a side mixes suites, and how much."""
        out: dict[str, int] = {}
        for rows in self._suite_parts(None, count=func.count()):
            for _, name, _, n in rows:
                out[str(name)] = out.get(str(name), 0) + int(n)
        return out

    def _suite_parts(self, version: Any, count: Any) -> Iterator[Any]:
        from canary.store.side_suites import suite_parts

        return suite_parts(self, version, count)

    def rows(self, aggregation: str, queries: Sequence[MetricQuery]) -> list[Any]:
        """The rows of ``aggregation`` (a key of `AGGREGATIONS`) for ``queries``."""
        return AGGREGATIONS[aggregation](self, queries)

    def probe_flag_counts(self, metrics: Sequence[str]) -> list[tuple[int, str, str, int, int]]:
        """(cohort id, probe key, metric, flagged, scored) of score-sourced rate metrics."""
        flagged = case((ScoreRow.flagged.is_(True), 1), else_=0)
        rows = self.conn.execute(
            select(
                ResultRow.cohort_id,
                ProbeRow.probe_key,
                ScoreRow.metric,
                func.sum(flagged),
                func.count(),
            )
            .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
            .where(ScoreRow.result_id == ResultRow.id, *self.where, ScoreRow.metric.in_(metrics))
            .group_by(ResultRow.cohort_id, ProbeRow.probe_key, ScoreRow.metric)
        )
        return [(int(c), str(p), str(m), int(k or 0), int(n)) for c, p, m, k, n in rows]

    def output_counts(self, probe_kinds: Sequence[str]) -> list[tuple[int, str, str, int]]:
        """(cohort id, probe key, output, count) of answered probes of ``probe_kinds``."""
        rows = self.conn.execute(
            select(ResultRow.cohort_id, ProbeRow.probe_key, ResultRow.output_text, func.count())
            .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
            .where(
                *self.where,
                ProbeRow.kind.in_(list(probe_kinds)),
                ResultRow.error_kind.is_(None),
                ResultRow.output_text.is_not(None),
            )
            .group_by(ResultRow.cohort_id, ProbeRow.probe_key, ResultRow.output_text)
        )
        return [(int(c), str(p), str(t), int(n)) for c, p, t, n in rows]


@contextmanager
def selection(
    store: Store, filt: ResultFilter, spec: RollupSpec | None = None
) -> Iterator[Selection]:
    """The cohorts ``filt`` selects, and WHERE clauses for its runs, window and suites; with
    ``spec``, which runs the rollups answer for."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(CohortRow.id, CohortRow.labels)).all()
        wanted = set(matching_cohort_ids(conn, filt.labels)) if filt.labels else None
        cohorts = [(int(i), dict(labels)) for i, labels in rows if wanted is None or i in wanted]
        where = filter_clauses(conn, filt, labels=False)  # labels: the cohorts above
        where = [ResultRow.cohort_id.in_([i for i, _ in cohorts]), *where]
        sel = Selection(conn, filt, cohorts, where)
        if spec is not None:
            _plan_rollups(sel, spec)
        yield sel


def _plan_rollups(sel: Selection, spec: RollupSpec) -> None:
    """Split the selected runs into those the rollups answer for and those read raw."""
    split = split_runs(sel.conn, sel.filt, spec)
    sel.spec = spec
    sel.split = split
    sel.raw_runs = split.raw_runs


def flag_counts(sel: Selection, queries: Sequence[MetricQuery]) -> list[CountRow]:
    """Flagged/counted results and sessions: failed requests for `RESULT_ERRORS` metrics,
    flagged scores for the others (one query per source, plus one per source on rollups)."""
    out: list[CountRow] = []
    for q in (q for q in queries if q.source == RESULT_ERRORS):
        where = sel.raw_where(rolled_up=True)
        if where is not None:
            errored = case((ResultRow.error_kind.is_not(None), 1), else_=0)
            errored_session = case((ResultRow.error_kind.is_not(None), ResultRow.session_id))
            for cohort_id, n, k, sn, sk in sel.conn.execute(
                select(
                    ResultRow.cohort_id,
                    func.count(),
                    func.sum(errored),
                    func.count(distinct(ResultRow.session_id)),
                    func.count(distinct(errored_session)),
                )
                .where(*where)
                .group_by(ResultRow.cohort_id)
            ):
                out.append(CountRow(cohort_id, q.metric, "", int(n), int(k or 0), int(sn), int(sk)))
        if sel.uses_rollups:
            for cohort_id, _, fingerprint, n, k, sn, sk in rolled_counts(
                sel.conn, sel.rollup_wheres(ERRORS), [""]
            ):
                out.append(CountRow(cohort_id, q.metric, fingerprint, n, k, sn, sk))
    scored = [q.metric for q in queries if q.source == SCORES]
    if not scored:
        return out
    where = sel.raw_where(rolled_up=True)
    if where is not None:
        flagged = case((ScoreRow.flagged.is_(True), 1), else_=0)
        flagged_session = case((ScoreRow.flagged.is_(True), ResultRow.session_id))
        for cohort_id, name, fingerprint, n, k, sn, sk in sel.conn.execute(
            select(
                ResultRow.cohort_id,
                ScoreRow.metric,
                ScoreRow.detector_version,
                func.count(),
                func.sum(flagged),
                func.count(distinct(ResultRow.session_id)),
                func.count(distinct(flagged_session)),
            )
            .where(ScoreRow.result_id == ResultRow.id, *where, ScoreRow.metric.in_(scored))
            .group_by(ResultRow.cohort_id, ScoreRow.metric, ScoreRow.detector_version)
        ):
            out.append(
                CountRow(cohort_id, name, fingerprint, int(n), int(k or 0), int(sn), int(sk))
            )
    if sel.uses_rollups:
        for row in rolled_counts(sel.conn, sel.rollup_wheres(FLAGS), scored):
            out.append(CountRow(*row))
    return out


def _rolls_up(sel: Selection, table: str, metric: str, value: object) -> bool:
    """Whether the rollups hold ``metric`` as the query asks for it (same bins or key)."""
    if sel.spec is None:
        return False
    declared: dict[str, object] = dict(getattr(sel.spec, table))
    return declared.get(metric) == value


def value_bins(sel: Selection, queries: Sequence[MetricQuery]) -> list[BinRow]:
    """Counts per fixed bin: the latency of answered results for `RESULT_LATENCY` metrics, the
    score value for the others (one query per metric, plus one on the rollups)."""
    out: list[BinRow] = []
    for q in queries:
        if q.bins is None:
            continue
        latency = q.source == RESULT_LATENCY
        rolled = _rolls_up(sel, "latency" if latency else "bins", q.metric, q.bins)
        where = sel.raw_where(rolled_up=rolled)
        if where is not None and latency:
            index = bin_index(ResultRow.latency_ms, q.bins)
            for cohort_id, i, n in sel.conn.execute(
                select(ResultRow.cohort_id, index, func.count())
                .where(*where, ResultRow.error_kind.is_(None))
                .group_by(ResultRow.cohort_id, index)
            ):
                out.append(BinRow(cohort_id, q.metric, "", int(i), int(n)))
        elif where is not None:
            index = bin_index(ScoreRow.value, q.bins)
            for cohort_id, fingerprint, i, n in sel.conn.execute(
                select(ResultRow.cohort_id, ScoreRow.detector_version, index, func.count())
                .where(
                    ScoreRow.result_id == ResultRow.id,
                    *where,
                    ScoreRow.metric == q.metric,
                    ScoreRow.value.is_not(None),
                )
                .group_by(ResultRow.cohort_id, ScoreRow.detector_version, index)
            ):
                out.append(BinRow(cohort_id, q.metric, fingerprint, int(i), int(n)))
        if rolled:
            for cohort_id, _, fingerprint, bucket, n in rolled_buckets(
                sel.conn, sel.rollup_wheres(LATENCY if latency else BINS), q.metric
            ):
                out.append(BinRow(cohort_id, q.metric, fingerprint, int(bucket), n))
    return out


def evidence_categories(sel: Selection, queries: Sequence[MetricQuery]) -> list[CategoryRow]:
    """Scores per category (the evidence field ``category``), per probe as ``metric@probe``."""
    out: list[CategoryRow] = []
    for q in queries:
        if q.category is None:
            continue
        rolled = _rolls_up(sel, "categories", q.metric, q.category)
        where = sel.raw_where(rolled_up=rolled)
        if where is not None:
            category = ScoreRow.evidence[q.category].as_string()
            for cohort_id, probe_key, fingerprint, value, n in sel.conn.execute(
                select(
                    ResultRow.cohort_id,
                    ProbeRow.probe_key,
                    ScoreRow.detector_version,
                    category,
                    func.count(),
                )
                .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
                .where(ScoreRow.result_id == ResultRow.id, *where, ScoreRow.metric == q.metric)
                .group_by(
                    ResultRow.cohort_id, ProbeRow.probe_key, ScoreRow.detector_version, category
                )
            ):
                metric = f"{q.metric}@{probe_key}"
                out.append(CategoryRow(cohort_id, metric, fingerprint, str(value), int(n)))
        if rolled:
            for cohort_id, probe_key, fingerprint, bucket, n in rolled_buckets(
                sel.conn, sel.rollup_wheres(CATEGORIES), q.metric
            ):
                metric = f"{q.metric}@{probe_key}"
                out.append(CategoryRow(cohort_id, metric, fingerprint, bucket, n))
    return out


AGGREGATIONS: dict[str, Callable[[Selection, Sequence[MetricQuery]], list[Any]]] = {
    "flags": flag_counts,
    "bins": value_bins,
    "categories": evidence_categories,
}
"""Aggregation name → function; a metric kind names the one that fills its statistics."""

__all__ = [
    "AGGREGATIONS",
    "RESULT_ERRORS",
    "RESULT_LATENCY",
    "SCORES",
    "BinRow",
    "Bins",
    "CategoryRow",
    "CountRow",
    "MetricQuery",
    "RollupSpec",
    "Selection",
    "selection",
]
