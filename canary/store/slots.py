"""The `schedule_slots` table: claims, leases, take-overs and missed slots, for every daemon.

A slot is one (schedule, slot time) row under a unique key, so of several daemons inserting
the same slot exactly one succeeds. A lease that ran out is taken over with a conditional
UPDATE (status still recoverable, lease still past) that only one daemon can win; on
PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED`` so racing daemons examine
different rows. The daemon decides when to claim and what to do (`canary.daemon.slots`); this
module only says who won.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from canary.store.models import RunRow, ScheduleSlotRow
from canary.store.repository import Store

#: Slot states another daemon may take over once the lease has run out.
RECOVERABLE = ("running", "aborted")
#: States a slot ends in.
FINAL = ("done", "failed", "missed")


@dataclass(frozen=True)
class SlotClaim:
    """A slot this daemon owns now."""

    id: int
    schedule: str
    slot_at: datetime
    attempt: int
    recovered: bool = False
    """Taken over from another owner whose lease ran out (or who released it)."""
    taken_from: str | None = None
    """The previous owner, when `recovered`."""


@dataclass(frozen=True)
class Recovery:
    """What one `recover_slots` pass did."""

    claims: list[SlotClaim] = field(default_factory=list)
    """Slots taken over, oldest first."""
    missed: list[tuple[str, datetime]] = field(default_factory=list)
    """(schedule, slot time) of orphans too old to re-run, now marked `missed`."""


def claim_slot(
    store: Store, schedule: str, slot_at: datetime, owner: str, lease_until: datetime, now: datetime
) -> SlotClaim | None:
    """Insert the slot as ours; when it exists, take it over if its lease ran out, else None."""
    try:
        with store.write_transaction() as conn:
            slot_id = conn.execute(
                insert(ScheduleSlotRow)
                .values(
                    schedule=schedule,
                    slot_at=slot_at,
                    status="running",
                    owner=owner,
                    lease_until=lease_until,
                    attempts=1,
                    claimed_at=now,
                )
                .returning(ScheduleSlotRow.id)
            ).scalar_one()
    except IntegrityError:
        with store.write_transaction() as conn:
            existing = conn.execute(
                select(ScheduleSlotRow.id).where(
                    ScheduleSlotRow.schedule == schedule, ScheduleSlotRow.slot_at == slot_at
                )
            ).scalar_one_or_none()
            if existing is None:
                return None
            return _take_over(conn, existing, schedule, slot_at, owner, lease_until, now)
    return SlotClaim(int(slot_id), schedule, slot_at, 1)


def attach_run(store: Store, slot_id: int, owner: str, run_id: int) -> None:
    """Remember which run a slot started (a take-over marks that run abandoned)."""
    with store.write_transaction() as conn:
        conn.execute(
            update(ScheduleSlotRow)
            .where(ScheduleSlotRow.id == slot_id, ScheduleSlotRow.owner == owner)
            .values(run_id=run_id)
        )


def renew_slots(store: Store, slot_ids: Sequence[int], owner: str, lease_until: datetime) -> int:
    """Extend the leases of the running slots among `slot_ids` still owned by `owner`."""
    if not slot_ids:
        return 0
    with store.write_transaction() as conn:
        return conn.execute(
            update(ScheduleSlotRow)
            .where(
                ScheduleSlotRow.id.in_(list(slot_ids)),
                ScheduleSlotRow.owner == owner,
                ScheduleSlotRow.status == "running",
            )
            .values(lease_until=lease_until)
        ).rowcount


def finish_slot(
    store: Store, slot_id: int, owner: str, status: str, error: str | None, at: datetime
) -> bool:
    """Close a slot as `status`; False when `owner` no longer holds it."""
    with store.write_transaction() as conn:
        return bool(
            conn.execute(
                update(ScheduleSlotRow)
                .where(ScheduleSlotRow.id == slot_id, ScheduleSlotRow.owner == owner)
                .values(status=status, finished_at=at, error=error)
            ).rowcount
        )


def release_slot(store: Store, slot_id: int, owner: str, now: datetime) -> None:
    """Mark an unfinished slot `aborted` with its lease past, so any daemon may take it now."""
    with store.write_transaction() as conn:
        conn.execute(
            update(ScheduleSlotRow)
            .where(ScheduleSlotRow.id == slot_id, ScheduleSlotRow.owner == owner)
            .values(status="aborted", lease_until=now, finished_at=now)
        )


def recover_slots(
    store: Store,
    schedules: Iterable[str],
    owner: str,
    *,
    lease_until: datetime,
    now: datetime,
    missed_before: datetime,
    limit: int = 10,
) -> Recovery:
    """Take over other owners' slots whose lease ran out; those older than `missed_before`
    are marked `missed` instead. One transaction, the candidates locked on PostgreSQL."""
    query = (
        select(ScheduleSlotRow.id, ScheduleSlotRow.schedule, ScheduleSlotRow.slot_at)
        .where(
            ScheduleSlotRow.schedule.in_(list(schedules)),
            ScheduleSlotRow.status.in_(RECOVERABLE),
            ScheduleSlotRow.lease_until < now,
            # our own slot with a lapsed lease is still running here: never run it twice
            ScheduleSlotRow.owner != owner,
        )
        .order_by(ScheduleSlotRow.slot_at)
        .limit(limit)
    )
    recovery = Recovery()
    with store.write_transaction() as conn:
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for slot_id, schedule, slot_at in conn.execute(query).all():
            if slot_at < missed_before:
                conn.execute(
                    update(ScheduleSlotRow)
                    .where(ScheduleSlotRow.id == slot_id)
                    .values(status="missed", finished_at=now)
                )
                recovery.missed.append((schedule, slot_at))
                continue
            claim = _take_over(conn, slot_id, schedule, slot_at, owner, lease_until, now)
            if claim is not None:
                recovery.claims.append(claim)
    return recovery


def known_slot_times(store: Store, schedule: str, first: datetime, last: datetime) -> set[datetime]:
    """The slot times of `schedule` in [first, last] that have a row (any status)."""
    with store.engine.connect() as conn:
        return _known(conn, schedule, first, last)


def newest_slot_time(store: Store, schedule: str) -> datetime | None:
    """The latest slot time with a row for `schedule`; None when it never had one."""
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.max(ScheduleSlotRow.slot_at)).where(ScheduleSlotRow.schedule == schedule)
        ).scalar()


def record_missed_slots(
    store: Store,
    schedule: str,
    slots: Sequence[datetime],
    owner: str,
    now: datetime,
    reason: str,
) -> int:
    """Write a `missed` row for each of `slots` (oldest first) that has none; returns how
    many this call wrote. Another daemon recording the same slots at once gets 0 for those."""
    if not slots:
        return 0
    for attempt in (1, 2):
        try:
            with store.write_transaction() as conn:
                known = _known(conn, schedule, slots[0], slots[-1])
                rows = [
                    {
                        "schedule": schedule,
                        "slot_at": slot_at,
                        "status": "missed",
                        "owner": owner,
                        "lease_until": now,
                        "attempts": 0,
                        "claimed_at": now,
                        "finished_at": now,
                        "error": reason,
                    }
                    for slot_at in slots
                    if slot_at not in known
                ]
                if rows:
                    conn.execute(insert(ScheduleSlotRow), rows)
                return len(rows)
        except IntegrityError:
            if attempt == 2:  # a second race on the same slots: the other daemon recorded them
                return 0
    return 0


def _known(conn: Connection, schedule: str, first: datetime, last: datetime) -> set[datetime]:
    return set(
        conn.execute(
            select(ScheduleSlotRow.slot_at).where(
                ScheduleSlotRow.schedule == schedule,
                ScheduleSlotRow.slot_at >= first,
                ScheduleSlotRow.slot_at <= last,
            )
        ).scalars()
    )


def _take_over(
    conn: Connection,
    slot_id: int,
    schedule: str,
    slot_at: datetime,
    owner: str,
    lease_until: datetime,
    now: datetime,
) -> SlotClaim | None:
    """The conditional UPDATE only one daemon wins; the loser's half-done run is abandoned."""
    previous = conn.execute(
        select(ScheduleSlotRow.run_id, ScheduleSlotRow.owner, ScheduleSlotRow.attempts).where(
            ScheduleSlotRow.id == slot_id
        )
    ).one()
    won = conn.execute(
        update(ScheduleSlotRow)
        .where(
            ScheduleSlotRow.id == slot_id,
            ScheduleSlotRow.status.in_(RECOVERABLE),
            ScheduleSlotRow.lease_until < now,
        )
        .values(
            status="running",
            owner=owner,
            lease_until=lease_until,
            attempts=ScheduleSlotRow.attempts + 1,
            claimed_at=now,
            finished_at=None,
            run_id=None,
        )
    ).rowcount
    if not won:
        return None
    if previous.run_id is not None:
        conn.execute(
            update(RunRow)
            .where(RunRow.id == previous.run_id, RunRow.status == "running")
            .values(status="abandoned", finished_at=now)
        )
    return SlotClaim(
        slot_id, schedule, slot_at, previous.attempts + 1, recovered=True, taken_from=previous.owner
    )
