"""Retention for a daemon that runs for months: drop raw outputs, keep every score.

Raw outputs (text, tokens and logprobs, headers, error detail) are most of the database; the
scores computed from them are what baselines, comparisons and alerts read. `prune` nulls the raw
columns of old results and marks them `pruned_at`, keeping the row, its request and its scores.
Results cited as alert evidence keep their output, so an alert can always be inspected. Old
finished schedule slots and fully delivered notifications are deleted.

Every batch is its own transaction and each row is changed by one UPDATE, so a killed prune
leaves whole batches pruned and the rest untouched, never a half-pruned row.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Connection, delete, exists, null, select, update

from canary.errors import ConfigError
from canary.store.models import (
    AlertRow,
    DeliveryRow,
    NotificationRow,
    ResultRow,
    ScheduleSlotRow,
)
from canary.store.repository import Store

#: Slot statuses a slot never leaves (`running` slots are live or await lease takeover).
FINAL_SLOT_STATUSES = ("done", "failed", "aborted", "missed")
#: Delivery statuses after which nothing will be sent again.
FINAL_DELIVERY_STATUSES = ("delivered", "expired")


class RetentionPolicy(BaseModel):
    """How long canary keeps what it stored; by default scores and result rows for good."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_output_days: Annotated[int, Field(ge=1)] = 30
    """Results older than this lose their raw output (text, tokens, headers, error detail)."""
    result_days: Annotated[int, Field(ge=1)] | None = None
    """Results (and their scores) older than this are deleted; None keeps them for good. On a
    partitioned PostgreSQL store whole months go, so up to a month more is kept. Alert
    evidence and every run's rollups stay (`canary.store.row_retention`)."""
    bookkeeping_days: Annotated[int, Field(ge=1)] = 90
    """Finished schedule slots and fully delivered notifications older than this are deleted."""
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    """Rows changed per transaction: small enough that the daemon's writers never wait long."""

    @classmethod
    def older_than(
        cls, text: str, *, option: str = "--older-than", **changes: Any
    ) -> RetentionPolicy:
        """The policy for `--older-than 30d`: whole days, at least one."""
        from canary.timespec import parse_duration

        age = parse_duration(text)
        days, rest = divmod(age, timedelta(days=1))
        if days < 1 or rest:
            raise ConfigError(
                f"{option} {text!r}: retention counts whole days; write e.g. 30d or 2w"
            )
        return cls(raw_output_days=days, **changes)


@dataclass(frozen=True)
class PruneReport:
    """What a prune did, or with `dry_run`, what it would do."""

    results_pruned: int
    """Results whose raw output was removed."""
    results_kept_as_evidence: int
    """Old results that keep their output because an alert cites them."""
    slots_deleted: int
    notifications_deleted: int
    output_cutoff: datetime
    """Results started before this lose their output."""
    bookkeeping_cutoff: datetime
    """Slots and notifications before this are deleted."""
    dry_run: bool = False
    results_dropped: int = 0
    """Whole results deleted (`RetentionPolicy.result_days`)."""
    results_cutoff: datetime | None = None
    """Results started before this are deleted; None: results are kept for good."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_cutoff"] = self.output_cutoff.isoformat()
        data["bookkeeping_cutoff"] = self.bookkeeping_cutoff.isoformat()
        data["results_cutoff"] = self.results_cutoff and self.results_cutoff.isoformat()
        return data


def prune(
    store: Store,
    policy: RetentionPolicy | None = None,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Apply `policy` (default: `RetentionPolicy()`) to the store; safe to run again at any time.

    With `dry_run` nothing is written and the counts say what a real run would change.
    """
    policy = policy or RetentionPolicy()
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("naive datetime given to prune; use datetime.now(UTC)")
    output_cutoff = now - timedelta(days=policy.raw_output_days)
    bookkeeping_cutoff = now - timedelta(days=policy.bookkeeping_days)
    pruned, kept = _prune_results(store, policy.batch_size, output_cutoff, now, dry_run)
    results_cutoff = dropped = None
    if policy.result_days is not None:
        from canary.store.row_retention import drop_old_results

        results_cutoff = now - timedelta(days=policy.result_days)
        with store.engine.connect() as conn:
            evidence = evidence_result_ids(conn)
        dropped = drop_old_results(store, results_cutoff, evidence, policy.batch_size, dry_run)
    return PruneReport(
        results_pruned=pruned,
        results_kept_as_evidence=kept,
        slots_deleted=_delete_slots(store, policy.batch_size, bookkeeping_cutoff, dry_run),
        notifications_deleted=_delete_notifications(
            store, policy.batch_size, bookkeeping_cutoff, dry_run
        ),
        output_cutoff=output_cutoff,
        bookkeeping_cutoff=bookkeeping_cutoff,
        dry_run=dry_run,
        results_dropped=dropped or 0,
        results_cutoff=results_cutoff,
    )


def evidence_result_ids(conn: Connection) -> set[int]:
    """Every result id any alert cites as evidence (alerts are few; their lists are short)."""
    ids: set[int] = set()
    for (evidence,) in conn.execute(select(AlertRow.evidence_ids)):
        ids.update(int(i) for i in evidence or ())
    return ids


def _batch(store: Store, dry_run: bool) -> AbstractContextManager[Connection]:
    """One transaction per batch; a writer takes SQLite's lock at BEGIN (see `make_engine`)."""
    return store.engine.begin() if dry_run else store.write_transaction()


def _prune_results(
    store: Store, batch_size: int, cutoff: datetime, now: datetime, dry_run: bool
) -> tuple[int, int]:
    # Evidence is read once: alerts cite results of their recent window, far younger than any
    # retention cutoff, so an alert created during the prune cannot cite a row being pruned.
    with store.engine.connect() as conn:
        evidence = evidence_result_ids(conn)
    pruned = kept = 0
    last_id = 0
    while True:
        with _batch(store, dry_run) as conn:
            ids = list(
                conn.execute(
                    select(ResultRow.id)
                    .where(
                        ResultRow.id > last_id,
                        ResultRow.started_at < cutoff,
                        ResultRow.pruned_at.is_(None),
                    )
                    .order_by(ResultRow.id)
                    .limit(batch_size)
                ).scalars()
            )
            if not ids:
                return pruned, kept
            last_id = ids[-1]
            doomed = [i for i in ids if i not in evidence]
            kept += len(ids) - len(doomed)
            if dry_run or not doomed:
                pruned += len(doomed)
                continue
            # null(), not None: None in a JSON column would store the JSON value `null`.
            done = conn.execute(
                update(ResultRow)
                .where(ResultRow.id.in_(doomed), ResultRow.pruned_at.is_(None))
                .values(output_text=null(), response=null(), error_detail=null(), pruned_at=now)
            )
            pruned += done.rowcount


def _delete_slots(store: Store, batch_size: int, cutoff: datetime, dry_run: bool) -> int:
    where = [ScheduleSlotRow.status.in_(FINAL_SLOT_STATUSES), ScheduleSlotRow.slot_at < cutoff]
    return _delete_batches(store, ScheduleSlotRow, where, batch_size, dry_run)


def _delete_notifications(store: Store, batch_size: int, cutoff: datetime, dry_run: bool) -> int:
    # A notification with no delivery at all had no sink to go to; it is as finished as one
    # whose deliveries all ended. Its deliveries go with it (ON DELETE CASCADE).
    unfinished = exists().where(
        DeliveryRow.notification_id == NotificationRow.id,
        DeliveryRow.status.not_in(FINAL_DELIVERY_STATUSES),
    )
    where = [NotificationRow.created_at < cutoff, ~unfinished]
    return _delete_batches(store, NotificationRow, where, batch_size, dry_run)


def _delete_batches(
    store: Store,
    row: type[ScheduleSlotRow] | type[NotificationRow],
    where: Sequence[ColumnElement[bool]],
    batch_size: int,
    dry_run: bool,
) -> int:
    """Delete the rows matching `where` in id batches; the DELETE re-checks `where`."""
    deleted = 0
    last_id = 0
    while True:
        with _batch(store, dry_run) as conn:
            ids = list(
                conn.execute(
                    select(row.id)
                    .where(row.id > last_id, *where)
                    .order_by(row.id)
                    .limit(batch_size)
                ).scalars()
            )
            if not ids:
                return deleted
            last_id = ids[-1]
            if dry_run:
                deleted += len(ids)
                continue
            deleted += conn.execute(delete(row).where(row.id.in_(ids), *where)).rowcount
