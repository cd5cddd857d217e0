"""Reading results for scoring and writing detector scores, in batches sized for 100k+ rows.

Scores are upserted on (result, detector, metric): re-scoring with a new detector version
replaces the old value, and `detector_specs` keeps the arguments behind each fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from canary.errors import StoreError
from canary.records import ResultFilter
from canary.store.engine import dumps_json
from canary.store.filters import result_filters
from canary.store.models import (
    DetectorSpecRow,
    EndpointRow,
    ProbeRow,
    ResultRow,
    ScoreRow,
    utcnow,
)
from canary.store.repository import Store
from canary.store.rollups import invalidate_runs


@dataclass(frozen=True, slots=True)
class ScorableResult:
    """The columns of a stored result that detectors read."""

    result_id: int
    run_id: int
    endpoint_id: int
    probe_row_id: int
    output_text: str | None
    error_kind: str | None
    finish_reason: str | None
    tokens: list[dict[str, Any]] | None
    pruned: bool = False
    """Retention removed its output (only with ``include_pruned``): never score it."""
    tool_calls: list[dict[str, Any]] | None = None
    """The stored tool calls (`response["tool_calls"]`), read with `tool_calls_from_json`."""


class ScoreToSave(NamedTuple):
    """One score of one result, with the detector fingerprint that made it (a tuple: a
    scoring pass makes 14 a result, and a tuple is the cheapest immutable record)."""

    result_id: int
    detector: str
    fingerprint: str
    metric: str
    value: float | None
    flagged: bool
    evidence: dict[str, Any] | None


def scorable_batches(
    store: Store,
    results: ResultFilter | None = None,
    *,
    kinds: Sequence[str] | None = None,
    batch_size: int = 5000,
    include_pruned: bool = False,
) -> Iterator[list[ScorableResult]]:
    """The `results` to score (default: all), oldest id first, in batches (keyset
    pagination: constant memory).

    ``kinds`` keeps only results of probes of those kinds. Results whose output retention
    removed are left out: scoring their empty output would replace real scores with "empty
    output" ones. Group scorers pass ``include_pruned`` to see (and skip) partly pruned groups.
    """
    results = results or ResultFilter()
    with store.engine.connect() as conn:
        where = result_filters(
            conn,
            run_ids=results.run_ids,
            since=results.since,
            until=results.until,
            labels=results.labels,
            suites=results.suites,
        )
    if not include_pruned:
        where.append(ResultRow.pruned_at.is_(None))
    if kinds is not None:
        where.append(
            ResultRow.probe_id.in_(select(ProbeRow.id).where(ProbeRow.kind.in_(list(kinds))))
        )
    last_id = 0
    columns = (
        ResultRow.id,
        ResultRow.run_id,
        ResultRow.endpoint_id,
        ResultRow.probe_id,
        ResultRow.output_text,
        ResultRow.error_kind,
        ResultRow.finish_reason,
        ResultRow.response,
        ResultRow.pruned_at,
    )
    while True:
        query = (
            select(*columns)
            .where(ResultRow.id > last_id, *where)
            .order_by(ResultRow.id)
            .limit(batch_size)
        )
        with store.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        yield [
            ScorableResult(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                (r[7] or {}).get("tokens"),
                r[8] is not None,
                tool_calls=(r[7] or {}).get("tool_calls"),
            )
            for r in rows
        ]
        last_id = rows[-1][0]


def probe_specs(store: Store, probe_row_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Probe specs (the suite file's row) by probe row id."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(ProbeRow.id, ProbeRow.spec).where(ProbeRow.id.in_(sorted(set(probe_row_ids))))
        ).all()
    return {row_id: spec for row_id, spec in rows}


def endpoint_flavours(store: Store) -> dict[int, str]:
    """Endpoint row id → API flavour (the table is small): which prompt rendering it saw."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(EndpointRow.id, EndpointRow.flavour)).all()
    return {row_id: flavour for row_id, flavour in rows}


def save_scores(store: Store, scores: Sequence[ScoreToSave]) -> int:
    """Upsert a batch of scores in one transaction; returns how many were written.

    Each score gets its result's start time (the partition key) from the result itself, so a
    score of a result that is not stored is refused. The rows go to the driver in one
    `executemany` (SQLite) or by COPY into a temporary table and one upsert (PostgreSQL): at
    14 scores a result, SQLAlchemy's per-row parameter processing cost more than the
    detectors did.
    """
    if not scores:
        return 0
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            _upsert_postgresql(conn, scores)
        else:
            _upsert_sqlite(conn, scores)
        invalidate_runs(conn, (s.result_id for s in scores))  # same transaction: never stale
    return len(scores)


_UPDATE = (
    "ON CONFLICT (result_id, detector, metric, result_started_at) DO UPDATE SET "
    "detector_version = excluded.detector_version, value = excluded.value, "
    "flagged = excluded.flagged, evidence = excluded.evidence, created_at = excluded.created_at"
)
_SQLITE_UPSERT = (
    "INSERT INTO scores (result_id, detector, detector_version, metric, value, flagged, "
    "evidence, created_at, result_started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
    f"(SELECT started_at FROM results WHERE id = ?)) {_UPDATE}"
)
_COLUMNS = ("result_id, detector, detector_version, metric, value, flagged, evidence, "
            "created_at, result_started_at")  # fmt: skip
#: PostgreSQL: rows arrive by COPY into a per-session temporary table, then one upsert.
_INCOMING = (
    "CREATE TEMP TABLE IF NOT EXISTS scores_incoming (result_id bigint, detector text, "
    "detector_version text, metric text, value float8, flagged bool, evidence jsonb, "
    "created_at timestamptz, result_started_at timestamptz) ON COMMIT DELETE ROWS"
)
_POSTGRESQL_UPSERT = (
    f"INSERT INTO scores ({_COLUMNS}) SELECT {_COLUMNS} FROM scores_incoming {_UPDATE}"
)


def _upsert_sqlite(conn: Connection, scores: Sequence[ScoreToSave]) -> None:
    created_at = _bound(conn, utcnow())
    rows = [
        (s.result_id, s.detector, s.fingerprint, s.metric, s.value, s.flagged,
         _json(s.evidence), created_at, s.result_id)
        for s in scores
    ]  # fmt: skip
    try:
        conn.exec_driver_sql(_SQLITE_UPSERT, rows)
    except IntegrityError as exc:
        raise StoreError(f"cannot save scores: {_missing(conn, scores) or exc.orig}") from None


def _upsert_postgresql(conn: Connection, scores: Sequence[ScoreToSave]) -> None:
    ids = sorted({s.result_id for s in scores})
    started = dict(
        conn.execute(select(ResultRow.id, ResultRow.started_at).where(ResultRow.id.in_(ids))).all()
    )
    if missing := _missing(conn, scores, started):
        raise StoreError(f"cannot save scores: {missing}")
    created_at = utcnow()
    conn.exec_driver_sql(_INCOMING)
    driver: Any = conn.connection.driver_connection  # psycopg's, inside this transaction
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY scores_incoming ({_COLUMNS}) FROM STDIN") as copy,
    ):
        for s in scores:
            copy.write_row(
                (s.result_id, s.detector, s.fingerprint, s.metric, s.value, s.flagged,
                 _json(s.evidence), created_at, started[s.result_id])
            )  # fmt: skip
    conn.exec_driver_sql(_POSTGRESQL_UPSERT)  # the temporary rows go at commit


def _json(evidence: dict[str, Any] | None) -> str:
    """Evidence as the JSON column stores it; most scores have none (JSON ``null``)."""
    return "null" if evidence is None else dumps_json(evidence)


def _missing(
    conn: Connection, scores: Sequence[ScoreToSave], started: Mapping[int, Any] | None = None
) -> str | None:
    """The one-line reason when some scores are of results that are not stored."""
    ids = {s.result_id for s in scores}
    if started is None:
        found = conn.execute(select(ResultRow.id).where(ResultRow.id.in_(sorted(ids))))
        started = dict.fromkeys(found.scalars())
    absent = sorted(ids - set(started))
    if not absent:
        return None
    return f"no stored result with id {', '.join(map(str, absent[:5]))}" + (
        f" and {len(absent) - 5} more" if len(absent) > 5 else ""
    )


def _bound(conn: Connection, moment: datetime) -> Any:
    """``moment`` as the driver stores a `created_at` (the column type's own conversion)."""
    kind = ScoreRow.__table__.c.created_at.type
    process = kind.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(moment) if process else moment


def record_detector_specs(
    store: Store, specs: Sequence[tuple[str, str, str, Mapping[str, Any]]]
) -> None:
    """Remember (detector, fingerprint, version, args) so stored scores stay traceable."""
    if not specs:
        return
    rows = [
        {"detector": d, "fingerprint": f, "version": v, "args": dict(a), "created_at": utcnow()}
        for d, f, v, a in specs
    ]
    with store.engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(DetectorSpecRow).on_conflict_do_nothing(
                index_elements=["detector", "fingerprint"]
            ),
            rows,
        )


def endpoint_names(store: Store) -> dict[int, str]:
    """Endpoint row id → name: which endpoint's chat template, or which is the reference."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(EndpointRow.id, EndpointRow.name)).all()
    return {row_id: name for row_id, name in rows}


def count_unjudged(
    store: Store,
    results: ResultFilter | None,
    kinds: Sequence[str],
    detectors: Sequence[str],
) -> int:
    """Results of probes of ``kinds`` among ``results`` with no score of ``detectors``: the
    reference-based checks that could not be made (no reference was configured)."""
    from sqlalchemy import func

    results = results or ResultFilter()
    with store.engine.connect() as conn:
        where = result_filters(
            conn,
            run_ids=results.run_ids,
            since=results.since,
            until=results.until,
            labels=results.labels,
            suites=results.suites,
        )
        scored = select(ScoreRow.result_id).where(ScoreRow.detector.in_(list(detectors)))
        query = select(func.count(ResultRow.id)).where(
            *where,
            ResultRow.error_kind.is_(None),
            ResultRow.output_text != "",  # nothing generated (eos first): nothing to judge
            ResultRow.probe_id.in_(select(ProbeRow.id).where(ProbeRow.kind.in_(list(kinds)))),
            ResultRow.id.not_in(scored),
        )
        return int(conn.execute(query).scalar_one())
