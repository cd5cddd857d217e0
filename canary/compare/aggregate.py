"""Per cohort × metric summaries of stored results, computed in SQL.

An `Aggregate` is what a comparison side (or a baseline) is: per cohort, the suite versions it
ran, and per metric either counts (rates), a fixed-bin histogram (continuous metrics, bins from
`canary.stats.DEFAULT_BINNING` so aggregates captured months apart line up) or category counts
(distributions). Nothing here loads result rows into Python: every number is a GROUP BY.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, case, distinct, func, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement as Col

from canary.records import ResultFilter
from canary.stats import DEFAULT_BINNING, Binning, MetricPolicy
from canary.store import Store
from canary.store.models import CohortRow, ProbeRow, ResultRow, ScoreRow, SuiteRow
from canary.store.repository import matching_cohort_ids

#: Metrics computed from the results table itself, not from detector scores.
ERROR_RATE = "error_rate"
LATENCY = "latency_ms"
#: The sampling scorer stores each sample's first token under this metric (evidence.token).
FIRST_TOKEN = "sampling_first_token"
ALL_COHORTS = "all"


@dataclass
class MetricData:
    """One metric of one cohort: what the statistical test needs, nothing more."""

    kind: str
    fingerprints: set[str] = field(default_factory=set)
    k: int = 0
    n: int = 0
    session_k: int = 0
    """Rates: sessions with at least one flagged result (a session is the independent unit:
    sticky routing sends all of a session's requests to one pool)."""
    session_n: int = 0
    """Rates: sessions with at least one scored result."""
    counts: list[int] | None = None
    binning: dict[str, Any] | None = None
    categories: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "fingerprints": sorted(self.fingerprints)}
        if self.kind == "rate":
            data.update(k=self.k, n=self.n)
            if self.session_n:
                data.update(session_k=self.session_k, session_n=self.session_n)
        elif self.kind == "continuous":
            data.update(counts=self.counts, binning=self.binning, n=self.n)
        else:
            data.update(categories=self.categories, n=self.n)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricData:
        return cls(
            kind=data["kind"],
            fingerprints=set(data.get("fingerprints", [])),
            k=int(data.get("k", 0)),
            n=int(data.get("n", 0)),
            session_k=int(data.get("session_k", 0)),
            session_n=int(data.get("session_n", 0)),
            counts=data.get("counts"),
            binning=data.get("binning"),
            categories=data.get("categories"),
        )


@dataclass
class CohortData:
    labels: dict[str, str]
    suites: dict[str, set[str]] = field(default_factory=dict)
    """Suite name → versions seen (more than one means the suite changed inside the side)."""
    cohort_ids: set[int] = field(default_factory=set)
    metrics: dict[str, MetricData] = field(default_factory=dict)
    probes: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    """Baselines only: probe → rate metric → [flagged, scored], to see which probes moved."""
    expected: dict[str, str] = field(default_factory=dict)
    """Baselines only: probe → most common output of greedy fixed/topk probes."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "labels": self.labels,
            "suites": {name: sorted(v) for name, v in sorted(self.suites.items())},
            "metrics": {m: d.to_json() for m, d in sorted(self.metrics.items())},
        }
        if self.probes:
            data["probes"] = {p: dict(sorted(m.items())) for p, m in sorted(self.probes.items())}
        if self.expected:
            data["expected"] = dict(sorted(self.expected.items()))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CohortData:
        return cls(
            labels=dict(data["labels"]),
            suites={name: set(v) for name, v in data["suites"].items()},
            metrics={m: MetricData.from_json(d) for m, d in data["metrics"].items()},
            probes={
                p: {m: list(v) for m, v in ms.items()} for p, ms in data.get("probes", {}).items()
            },
            expected=dict(data.get("expected", {})),
        )


@dataclass
class Aggregate:
    """One side of a comparison, or a baseline."""

    by: tuple[str, ...]
    cohorts: dict[str, CohortData] = field(default_factory=dict)
    description: str = ""

    @property
    def results(self) -> int:
        """Results covered (every result counts once, in `error_rate`)."""
        counted = [
            c.metrics[ERROR_RATE].n for c in self.cohorts.values() if ERROR_RATE in c.metrics
        ]
        return sum(counted)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "by": list(self.by),
            "description": self.description,
            "cohorts": {key: c.to_json() for key, c in sorted(self.cohorts.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Aggregate:
        if data.get("format") != 1:
            from canary.errors import StoreError

            raise StoreError("baseline payload has an unknown format; re-capture it")
        return cls(
            by=tuple(data["by"]),
            description=data.get("description", ""),
            cohorts={k: CohortData.from_json(c) for k, c in data["cohorts"].items()},
        )


def cohort_key(labels: Mapping[str, str], by: Sequence[str]) -> str:
    """``endpoint=gpu-a,load=c8`` for ``by=("endpoint", "load")``; ``all`` for no grouping."""
    if not by:
        return ALL_COHORTS
    return ",".join(f"{k}={labels.get(k, '')}" for k in by)


def aggregate(
    store: Store,
    filt: ResultFilter,
    by: Sequence[str],
    policies: Mapping[str, MetricPolicy],
    *,
    detail: bool = False,
) -> Aggregate:
    """Summarise the results ``filt`` selects, per cohort (``by`` labels) and metric.

    With ``detail`` (baselines), also per probe: rate counts, and the most common output of
    greedy fixed/topk probes (what a healthy fleet answered).
    """
    by = tuple(by)
    out = Aggregate(by=by, description=filt.describe())
    with store.engine.connect() as conn:
        cohort_rows = conn.execute(select(CohortRow.id, CohortRow.labels)).all()
        wanted = set(matching_cohort_ids(conn, filt.labels)) if filt.labels else None
        key_of: dict[int, str] = {}
        for cohort_id, labels in cohort_rows:
            if wanted is not None and cohort_id not in wanted:
                continue
            key = cohort_key(labels, by)
            key_of[cohort_id] = key
            cohort = out.cohorts.setdefault(key, CohortData({k: labels.get(k, "") for k in by}))
            cohort.cohort_ids.add(cohort_id)
        if not key_of:
            return out
        where = cohort_filters(conn, filt, list(key_of))

        def metric(cohort_id: int, name: str, kind: str) -> MetricData:
            return out.cohorts[key_of[cohort_id]].metrics.setdefault(name, MetricData(kind))

        for cohort_id, suite, version in conn.execute(
            select(ResultRow.cohort_id, SuiteRow.name, SuiteRow.version)
            .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
            .join(SuiteRow, SuiteRow.id == ProbeRow.suite_id)
            .where(*where)
            .group_by(ResultRow.cohort_id, SuiteRow.name, SuiteRow.version)
        ):
            out.cohorts[key_of[cohort_id]].suites.setdefault(suite, set()).add(version)

        errored = case((ResultRow.error_kind.is_not(None), 1), else_=0)
        errored_session = case((ResultRow.error_kind.is_not(None), ResultRow.session_id))
        for cohort_id, n, k, sn, sk in conn.execute(
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
            data = metric(cohort_id, ERROR_RATE, "rate")
            data.n += int(n)
            data.k += int(k or 0)
            data.session_n += int(sn)
            data.session_k += int(sk)

        latency_binning = DEFAULT_BINNING[LATENCY]
        latency_bin = _bin(ResultRow.latency_ms, latency_binning)
        for cohort_id, index, n in conn.execute(
            select(ResultRow.cohort_id, latency_bin, func.count())
            .where(*where, ResultRow.error_kind.is_(None))
            .group_by(ResultRow.cohort_id, latency_bin)
        ):
            _add_bin(metric(cohort_id, LATENCY, "continuous"), latency_binning, index, n, "")

        scored = [ScoreRow.result_id == ResultRow.id, *where]
        rates = [m for m, p in policies.items() if p.kind == "rate" and m != ERROR_RATE]
        flagged = case((ScoreRow.flagged.is_(True), 1), else_=0)
        flagged_session = case((ScoreRow.flagged.is_(True), ResultRow.session_id))
        for cohort_id, name, fingerprint, n, k, sn, sk in conn.execute(
            select(
                ResultRow.cohort_id,
                ScoreRow.metric,
                ScoreRow.detector_version,
                func.count(),
                func.sum(flagged),
                func.count(distinct(ResultRow.session_id)),
                func.count(distinct(flagged_session)),
            )
            .where(*scored, ScoreRow.metric.in_(rates))
            .group_by(ResultRow.cohort_id, ScoreRow.metric, ScoreRow.detector_version)
        ):
            data = metric(cohort_id, name, "rate")
            data.n += int(n)
            data.k += int(k or 0)
            # Sessions are unique to one endpoint and round, so summing over cohorts is exact.
            data.session_n += int(sn)
            data.session_k += int(sk)
            data.fingerprints.add(fingerprint)

        for name, policy in policies.items():
            if policy.kind != "continuous" or name == LATENCY or name not in DEFAULT_BINNING:
                continue
            binning = DEFAULT_BINNING[name]
            index_expr = _bin(ScoreRow.value, binning)
            for cohort_id, fingerprint, index, n in conn.execute(
                select(ResultRow.cohort_id, ScoreRow.detector_version, index_expr, func.count())
                .where(*scored, ScoreRow.metric == name, ScoreRow.value.is_not(None))
                .group_by(ResultRow.cohort_id, ScoreRow.detector_version, index_expr)
            ):
                _add_bin(metric(cohort_id, name, "continuous"), binning, index, n, fingerprint)

        token = ScoreRow.evidence["token"].as_string()
        for cohort_id, probe_key, fingerprint, category, n in conn.execute(
            select(
                ResultRow.cohort_id,
                ProbeRow.probe_key,
                ScoreRow.detector_version,
                token,
                func.count(),
            )
            .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
            .where(*scored, ScoreRow.metric == FIRST_TOKEN)
            .group_by(ResultRow.cohort_id, ProbeRow.probe_key, ScoreRow.detector_version, token)
        ):
            data = metric(cohort_id, f"{FIRST_TOKEN}@{probe_key}", "distribution")
            data.categories = data.categories or {}
            data.categories[str(category)] = data.categories.get(str(category), 0) + int(n)
            data.n += int(n)
            data.fingerprints.add(fingerprint)
        if detail:
            _probe_detail(conn, out, key_of, where, rates)
    return out


def _probe_detail(
    conn: Any,
    out: Aggregate,
    key_of: Mapping[int, str],
    where: list[ColumnElement[bool]],
    rates: list[str],
) -> None:
    flagged = case((ScoreRow.flagged.is_(True), 1), else_=0)
    for cohort_id, probe_key, name, n, k in conn.execute(
        select(
            ResultRow.cohort_id,
            ProbeRow.probe_key,
            ScoreRow.metric,
            func.count(),
            func.sum(flagged),
        )
        .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
        .where(ScoreRow.result_id == ResultRow.id, *where, ScoreRow.metric.in_(rates))
        .group_by(ResultRow.cohort_id, ProbeRow.probe_key, ScoreRow.metric)
    ):
        counts = out.cohorts[key_of[cohort_id]].probes.setdefault(probe_key, {})
        k_n = counts.setdefault(name, [0, 0])
        k_n[0] += int(k or 0)
        k_n[1] += int(n)
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for cohort_id, probe_key, text, n in conn.execute(
        select(ResultRow.cohort_id, ProbeRow.probe_key, ResultRow.output_text, func.count())
        .join(ProbeRow, ProbeRow.id == ResultRow.probe_id)
        .where(*where, ProbeRow.kind.in_(["fixed", "topk"]), ResultRow.error_kind.is_(None))
        .group_by(ResultRow.cohort_id, ProbeRow.probe_key, ResultRow.output_text)
    ):
        slot = (key_of[cohort_id], probe_key)
        if text is not None and (slot not in best or int(n) > best[slot][0]):
            best[slot] = (int(n), text)
    for (key, probe_key), (_, text) in best.items():
        out.cohorts[key].expected[probe_key] = text


def cohort_filters(
    conn: Any, filt: ResultFilter, cohort_ids: list[int]
) -> list[ColumnElement[bool]]:
    """The filter's runs and window, on the cohorts already resolved from its labels."""
    from canary.store.filters import result_filters

    where = result_filters(conn, run_ids=filt.run_ids, since=filt.since, until=filt.until)
    return [ResultRow.cohort_id.in_(cohort_ids), *where]


def _bin(column: InstrumentedAttribute[Any], binning: Binning) -> Col[Any]:
    """The bin index of ``column`` in SQL, clamped to [0, bins − 1] (`histogram_counts`' rule)."""
    if binning.scale == "log":
        import math

        lo = math.log(binning.lo)
        width = (math.log(binning.hi) - lo) / binning.bins
        floored = case((column < binning.lo, binning.lo), else_=column)  # ln(≤ 0) is an error
        raw = func.floor((func.ln(floored) - lo) / width)
    else:
        width = (binning.hi - binning.lo) / binning.bins
        raw = func.floor((column - binning.lo) / width)
    return case((raw < 0, 0), (raw > binning.bins - 1, binning.bins - 1), else_=raw)


def _add_bin(data: MetricData, binning: Binning, index: Any, n: int, fingerprint: str) -> None:
    if data.counts is None:
        data.counts = [0] * binning.bins
        data.binning = binning.model_dump()
    data.counts[int(index)] += int(n)
    data.n += int(n)
    if fingerprint:
        data.fingerprints.add(fingerprint)
