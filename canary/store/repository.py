"""Reads and writes of suites, endpoints, runs and results: the SQL behind every command.

Writers take one transaction per call, so a killed process leaves whole batches or nothing.
Cohort rows are get-or-create by label fingerprint and safe with several writers on one
PostgreSQL database (INSERT … ON CONFLICT DO NOTHING, then SELECT).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from canary.config.fleet import EndpointConfig
from canary.config.selection import labels_match
from canary.errors import NotFoundError, StoreError
from canary.probes.model import Suite
from canary.records import ResultRecord
from canary.store.engine import SQLITE_IMMEDIATE, redact
from canary.store.liveness import mark_abandoned_runs, record_heartbeat, this_process
from canary.store.models import (
    CohortRow,
    EndpointRow,
    ProbeRow,
    ResultRow,
    RunRow,
    SuiteRow,
    utcnow,
)
from canary.store.partitions import ensure_month_partitions, month_start
from canary.store.rollup_marks import forget_runs
from canary.store.rows import result_row
from canary.store.views import RunSummary, StoredResult, fetch_results, run_summaries

#: Statuses a run can end in (`running` is the status while it goes on; `abandoned`: its
#: process died, see `canary.store.liveness`).
FINAL_STATUSES = ("completed", "aborted", "failed", "abandoned")


def cohort_fingerprint(labels: Mapping[str, str]) -> str:
    """SHA-256 of the canonical JSON of a label set: the cohort's identity."""
    canonical = json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Store:
    """The canary database: open it with `open_store`, which checks the schema first."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._months: set[datetime] = set()
        """Months known to have partitions (PostgreSQL), so most batches check nothing."""

    def __repr__(self) -> str:
        return f"Store({redact(self.url)})"

    def close(self) -> None:
        """Close pooled connections (the store can still be used; it reconnects)."""
        self.engine.dispose()

    @contextmanager
    def write_transaction(self) -> Iterator[Connection]:
        """A write transaction: BEGIN IMMEDIATE on SQLite, so a read-then-write in it cannot
        fail on lock upgrade; committed when the block exits, rolled back on an exception."""
        with self.engine.connect() as conn:
            conn.execution_options(**{SQLITE_IMMEDIATE: True})
            with conn.begin():
                yield conn

    def _read(self) -> AbstractContextManager[Connection]:
        # One transaction for the SELECTs of a read: a single snapshot on SQLite.
        return self.engine.begin()

    # --- suites, endpoints, runs ---------------------------------------------------------

    def register_suite(self, suite: Suite) -> int:
        """The id of `suite` at its version, inserting it and its probes the first time."""
        with self.write_transaction() as conn:
            created = conn.execute(
                _upsert(conn, SuiteRow)
                .values(name=suite.name, version=suite.version, description=suite.description)
                .on_conflict_do_nothing(index_elements=["name", "version"])
                .returning(SuiteRow.id)
            ).scalar_one_or_none()
            if created is None:
                return conn.execute(
                    select(SuiteRow.id).where(
                        SuiteRow.name == suite.name, SuiteRow.version == suite.version
                    )
                ).scalar_one()
            probes = [
                {
                    "suite_id": created,
                    "probe_key": p.id,
                    "kind": p.kind,
                    "spec": p.model_dump(mode="json"),
                }
                for p in suite.probes
            ]
            conn.execute(insert(ProbeRow), probes)
            return created

    def register_endpoints(self, endpoints: Sequence[EndpointConfig]) -> dict[str, int]:
        """Insert or update endpoints by name; returns name → endpoints.id."""
        now = utcnow()
        rows = {
            e.name: {
                "name": e.name,
                "base_url": e.base_url,
                "flavour": e.flavour,
                "model": e.model,
                "labels": dict(e.labels),
                "created_at": now,
                "updated_at": now,
            }
            for e in endpoints
        }
        if not rows:
            return {}
        with self.write_transaction() as conn:
            stmt = _upsert(conn, EndpointRow).values(list(rows.values()))
            stmt = stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    key: stmt.excluded[key]
                    for key in ("base_url", "flavour", "model", "labels", "updated_at")
                },
            )
            returned = conn.execute(stmt.returning(EndpointRow.name, EndpointRow.id)).all()
        return {name: id_ for name, id_ in returned}

    def start_run(
        self,
        suite_id: int,
        *,
        trigger: str = "cli",
        load_shape: str = "probe",
        selection: Mapping[str, Any] | None = None,
        note: str | None = None,
    ) -> int:
        """Open a run of `suite_id` (status `running`, owned by this process); returns runs.id."""
        me, now = this_process(), utcnow()
        with self.write_transaction() as conn:
            if conn.execute(select(SuiteRow.id).where(SuiteRow.id == suite_id)).first() is None:
                raise NotFoundError(f"no suite with id {suite_id}; register it with register_suite")
            return conn.execute(
                insert(RunRow)
                .values(
                    suite_id=suite_id,
                    started_at=now,
                    status="running",
                    trigger=trigger,
                    load_shape=load_shape,
                    selection=dict(selection or {}),
                    host=me.host,
                    pid=me.pid,
                    pid_started=me.started,
                    heartbeat_at=now,
                    note=note,
                )
                .returning(RunRow.id)
            ).scalar_one()

    def finish_run(self, run_id: int, status: str = "completed") -> None:
        """Close a run with a final status and the time it ended."""
        if status not in FINAL_STATUSES:
            raise StoreError(f"run status {status!r} is not final; use {', '.join(FINAL_STATUSES)}")
        with self.write_transaction() as conn:
            done = conn.execute(
                update(RunRow)
                .where(RunRow.id == run_id)
                .values(status=status, finished_at=utcnow())
            )
        if done.rowcount == 0:
            raise NotFoundError(f"no run with id {run_id}; list runs with `canary runs`")

    def heartbeat(self, run_id: int, *, now: datetime | None = None) -> bool:
        """Tell other processes this run's process is alive; False once the run has ended."""
        with self.write_transaction() as conn:
            return record_heartbeat(conn, run_id, now or utcnow())

    def mark_abandoned_runs(self, *, now: datetime | None = None) -> list[int]:
        """Close `running` runs whose process died as `abandoned`; returns their ids."""
        return mark_abandoned_runs(self, now or utcnow())

    # --- results ---------------------------------------------------------------------------

    def save_results(
        self, run_id: int, suite_id: int, records: Sequence[ResultRecord]
    ) -> list[int]:
        """Store a batch of results in one transaction (all or none); returns their ids.

        Endpoint text is made storable on the way in (`canary.store.rows`); a record holding a value
        of the wrong type raises `StoreError`, so the caller can store it as an error instead.
        """
        if not records:
            return []
        with self.write_transaction() as conn:
            run_suite = conn.execute(
                select(RunRow.suite_id).where(RunRow.id == run_id)
            ).scalar_one_or_none()
            if run_suite is None:
                raise NotFoundError(f"no run with id {run_id}; open one with start_run first")
            if run_suite != suite_id:
                raise StoreError(
                    f"run {run_id} is a run of suite {run_suite}, not of {suite_id}; "
                    "pass the suite id the run was started with"
                )
            probes = dict(
                conn.execute(
                    select(ProbeRow.probe_key, ProbeRow.id).where(ProbeRow.suite_id == suite_id)
                ).all()
            )
            names = sorted({r.endpoint for r in records})
            endpoints = dict(
                conn.execute(
                    select(EndpointRow.name, EndpointRow.id).where(EndpointRow.name.in_(names))
                ).all()
            )
            for r in records:
                if r.probe_id not in probes:
                    raise StoreError(
                        f"result for probe {r.probe_id!r} but suite {suite_id} has no such probe;"
                        " save results with the suite version that produced them"
                    )
                if r.endpoint not in endpoints:
                    raise StoreError(
                        f"result for endpoint {r.endpoint!r}, which is not registered; "
                        "call register_endpoints with the fleet first"
                    )
                if r.started_at.tzinfo is None:
                    raise StoreError(
                        f"result for probe {r.probe_id!r} has a naive started_at; "
                        "record times with datetime.now(UTC)"
                    )
            months = {month_start(r.started_at) for r in records}
            if not months <= self._months:
                ensure_month_partitions(conn, months, ahead_of=datetime.now(UTC))
                self._months |= months
            cohorts = _cohort_ids(conn, [r.labels for r in records])
            rows = []
            for r in records:
                try:
                    row = result_row(
                        r,
                        run_id,
                        probes[r.probe_id],
                        endpoints[r.endpoint],
                        cohorts[cohort_fingerprint(r.labels)],
                    )
                except TypeError as exc:
                    raise StoreError(
                        f"result for probe {r.probe_id!r} of endpoint {r.endpoint!r} cannot be "
                        f"stored: {exc}"
                    ) from None
                rows.append(row)
            try:
                ids = conn.execute(
                    insert(ResultRow).returning(ResultRow.id, sort_by_parameter_order=True), rows
                ).scalars()
                saved = list(ids)
            except IntegrityError as exc:
                reason = str(exc.orig).strip().splitlines()[0]
                raise StoreError(f"cannot save results of run {run_id}: {reason}") from None
            forget_runs(conn, [run_id])  # a late result changes the run's sums: same transaction
            return saved

    def get_result(self, result_id: int) -> StoredResult:
        """One stored result with its scores."""
        with self._read() as conn:
            found = fetch_results(conn, [ResultRow.id == result_id])
        if not found:
            raise NotFoundError(f"no result with id {result_id}; list results with `canary runs`")
        return found[0]

    def results_for_run(self, run_id: int) -> list[StoredResult]:
        """Every result of one run, in the order they started."""
        with self._read() as conn:
            return fetch_results(conn, [ResultRow.run_id == run_id])

    def results_in_window(
        self,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StoredResult]:
        """Results of the cohorts carrying every `labels` pair, started in [since, until).

        Oldest first; `limit` keeps the first results. Matching cohorts are found first (the
        table is small), so the results query is a range scan on (cohort_id, started_at).
        """
        where: list[ColumnElement[bool]] = []
        with self._read() as conn:
            if labels:
                cohort_ids = matching_cohort_ids(conn, labels)
                if not cohort_ids:
                    return []
                where.append(ResultRow.cohort_id.in_(cohort_ids))
            if since is not None:
                where.append(ResultRow.started_at >= since)
            if until is not None:
                where.append(ResultRow.started_at < until)
            return fetch_results(conn, where, limit=limit)

    def count_results(self) -> int:
        """How many results the store holds."""
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(ResultRow)).scalar_one())

    def list_runs(self, limit: int = 20, *, suite: str | None = None) -> list[RunSummary]:
        """The most recent runs, newest first, optionally of one suite (by name)."""
        where = [SuiteRow.name == suite] if suite is not None else []
        with self._read() as conn:
            return run_summaries(conn, where, limit=limit)

    def get_run(self, run_id: int) -> RunSummary:
        """One run with its counts."""
        with self._read() as conn:
            found = run_summaries(conn, [RunRow.id == run_id])
        if not found:
            raise NotFoundError(f"no run with id {run_id}; list runs with `canary runs`")
        return found[0]


def _upsert(conn: Connection, entity: Any) -> Any:
    """INSERT with ON CONFLICT support, in the connection's dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(entity)


def matching_cohort_ids(conn: Connection, labels: Mapping[str, str]) -> list[int]:
    """Ids of the cohorts carrying every ``labels`` pair (the cohorts table is small)."""
    wanted = dict(labels)
    return [
        cohort_id
        for cohort_id, cohort_labels in conn.execute(select(CohortRow.id, CohortRow.labels))
        if labels_match(cohort_labels, wanted)
    ]


def _cohort_ids(conn: Connection, label_sets: Sequence[Mapping[str, str]]) -> dict[str, int]:
    wanted = {cohort_fingerprint(labels): dict(labels) for labels in label_sets}
    known = dict(
        conn.execute(
            select(CohortRow.fingerprint, CohortRow.id).where(CohortRow.fingerprint.in_(wanted))
        ).all()
    )
    # Sorted, so two writers creating the same new cohorts lock them in the same order.
    missing = sorted(fp for fp in wanted if fp not in known)
    if missing:
        now = utcnow()
        conn.execute(
            _upsert(conn, CohortRow).on_conflict_do_nothing(index_elements=["fingerprint"]),
            [{"fingerprint": fp, "labels": wanted[fp], "created_at": now} for fp in missing],
        )
        known.update(
            conn.execute(
                select(CohortRow.fingerprint, CohortRow.id).where(
                    CohortRow.fingerprint.in_(missing)
                )
            ).all()
        )
    return known
