"""Per cohort × metric summaries of stored results, computed in SQL: every number is a GROUP BY.

One aggregation per kind of sufficient statistic, named in `AGGREGATIONS` (a metric kind's
`canary.stats.kinds.StatTest.aggregation` picks its own): flag counts (rates), fixed-bin
histograms (continuous metrics) and category counts (distributions). Each reads a metric from
its declared source: the detector's scores, or the results table itself (failed requests,
latency). Rows come back as plain values; folding them into statistics is the caller's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, distinct, func, select

from canary.records import ResultFilter
from canary.store.filters import filter_clauses
from canary.store.models import CohortRow, ProbeRow, ResultRow, RunRow, ScoreRow, SuiteRow
from canary.store.repository import Store, matching_cohort_ids

SCORES = "score"
RESULT_ERRORS = "result.error"
RESULT_LATENCY = "result.latency_ms"


@dataclass(frozen=True)
class Bins:
    """Fixed bins: ``bins`` equal steps of [lo, hi] (of ln x for ``log``), ends clamped."""

    lo: float
    hi: float
    bins: int
    scale: str = "linear"


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

    def suite_versions(self) -> list[tuple[int, str, str]]:
        """(cohort id, suite name, suite version) of every suite that ran."""
        rows = self.conn.execute(
            select(ResultRow.cohort_id, SuiteRow.name, SuiteRow.version)
            .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
            .join(SuiteRow, SuiteRow.id == ProbeRow.suite_id)
            .where(*self.where)
            .group_by(ResultRow.cohort_id, SuiteRow.name, SuiteRow.version)
        )
        return [(int(c), str(s), str(v)) for c, s, v in rows]

    def suite_results(self) -> dict[str, int]:
        """Suite name → results of it selected: whether a side mixes suites, and how much."""
        rows = self.conn.execute(
            select(SuiteRow.name, func.count())
            .select_from(ResultRow)
            .join(RunRow, RunRow.id == ResultRow.run_id)
            .join(SuiteRow, SuiteRow.id == RunRow.suite_id)
            .where(*self.where)
            .group_by(SuiteRow.name)
        )
        return {str(name): int(n) for name, n in rows}

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
def selection(store: Store, filt: ResultFilter) -> Iterator[Selection]:
    """The cohorts ``filt`` selects, and WHERE clauses for its runs, window and suites."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(CohortRow.id, CohortRow.labels)).all()
        wanted = set(matching_cohort_ids(conn, filt.labels)) if filt.labels else None
        cohorts = [(int(i), dict(labels)) for i, labels in rows if wanted is None or i in wanted]
        where = filter_clauses(conn, filt, labels=False)  # labels: the cohorts above
        where = [ResultRow.cohort_id.in_([i for i, _ in cohorts]), *where]
        yield Selection(conn, filt, cohorts, where)


def flag_counts(sel: Selection, queries: Sequence[MetricQuery]) -> list[CountRow]:
    """Flagged/counted results and sessions: failed requests for `RESULT_ERRORS` metrics,
    flagged scores for the others (one query per source)."""
    out: list[CountRow] = []
    for q in (q for q in queries if q.source == RESULT_ERRORS):
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
            .where(*sel.where)
            .group_by(ResultRow.cohort_id)
        ):
            out.append(CountRow(cohort_id, q.metric, "", int(n), int(k or 0), int(sn), int(sk)))
    scored = [q.metric for q in queries if q.source == SCORES]
    if not scored:
        return out
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
        .where(ScoreRow.result_id == ResultRow.id, *sel.where, ScoreRow.metric.in_(scored))
        .group_by(ResultRow.cohort_id, ScoreRow.metric, ScoreRow.detector_version)
    ):
        out.append(CountRow(cohort_id, name, fingerprint, int(n), int(k or 0), int(sn), int(sk)))
    return out


def value_bins(sel: Selection, queries: Sequence[MetricQuery]) -> list[BinRow]:
    """Counts per fixed bin: the latency of answered results for `RESULT_LATENCY` metrics, the
    score value for the others (one query per metric)."""
    out: list[BinRow] = []
    for q in queries:
        if q.bins is None:
            continue
        if q.source == RESULT_LATENCY:
            index = _bin(ResultRow.latency_ms, q.bins)
            for cohort_id, i, n in sel.conn.execute(
                select(ResultRow.cohort_id, index, func.count())
                .where(*sel.where, ResultRow.error_kind.is_(None))
                .group_by(ResultRow.cohort_id, index)
            ):
                out.append(BinRow(cohort_id, q.metric, "", int(i), int(n)))
            continue
        index = _bin(ScoreRow.value, q.bins)
        for cohort_id, fingerprint, i, n in sel.conn.execute(
            select(ResultRow.cohort_id, ScoreRow.detector_version, index, func.count())
            .where(
                ScoreRow.result_id == ResultRow.id,
                *sel.where,
                ScoreRow.metric == q.metric,
                ScoreRow.value.is_not(None),
            )
            .group_by(ResultRow.cohort_id, ScoreRow.detector_version, index)
        ):
            out.append(BinRow(cohort_id, q.metric, fingerprint, int(i), int(n)))
    return out


def evidence_categories(sel: Selection, queries: Sequence[MetricQuery]) -> list[CategoryRow]:
    """Scores per category (the evidence field ``category``), per probe as ``metric@probe``."""
    out: list[CategoryRow] = []
    for q in queries:
        if q.category is None:
            continue
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
            .where(ScoreRow.result_id == ResultRow.id, *sel.where, ScoreRow.metric == q.metric)
            .group_by(ResultRow.cohort_id, ProbeRow.probe_key, ScoreRow.detector_version, category)
        ):
            metric = f"{q.metric}@{probe_key}"
            out.append(CategoryRow(cohort_id, metric, fingerprint, str(value), int(n)))
    return out


AGGREGATIONS: dict[str, Callable[[Selection, Sequence[MetricQuery]], list[Any]]] = {
    "flags": flag_counts,
    "bins": value_bins,
    "categories": evidence_categories,
}
"""Aggregation name → function; a metric kind names the one that fills its statistics."""


def _bin(column: Any, bins: Bins) -> ColumnElement[Any]:
    """The bin index of ``column`` in SQL, clamped to [0, bins − 1] (`histogram_counts`' rule)."""
    if bins.scale == "log":
        lo = math.log(bins.lo)
        width = (math.log(bins.hi) - lo) / bins.bins
        floored = case((column < bins.lo, bins.lo), else_=column)  # ln(≤ 0) is an error
        raw = func.floor((func.ln(floored) - lo) / width)
    else:
        width = (bins.hi - bins.lo) / bins.bins
        raw = func.floor((column - bins.lo) / width)
    return case((raw < 0, 0), (raw > bins.bins - 1, bins.bins - 1), else_=raw)
