"""Scheduled slots shared by several daemons on one database: run once, never lost.

Every daemon fires every schedule; the first to insert the (schedule, slot time) row owns the
slot, the others' inserts hit the unique key and skip it. The owner holds a lease it renews
while it works. A daemon that dies stops renewing; once the lease is past, any other daemon
takes the slot over with a conditional UPDATE that only one of them can win (PostgreSQL also
skips rows another daemon is examining, with ``FOR UPDATE SKIP LOCKED``), and the dead owner's
half-done run is marked ``abandoned``. A daemon stopped gently releases its slot at once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from canary.store import Store
from canary.store.models import RunRow, ScheduleSlotRow, utcnow

logger = logging.getLogger(__name__)

#: Slot states another daemon may take over once the lease has run out.
RECOVERABLE = ("running", "aborted")
FINAL = ("done", "failed", "missed")


def daemon_identity() -> str:
    """``host:pid:random``: unique per daemon process, readable in `canary doctor`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class SlotClaim:
    id: int
    schedule: str
    slot_at: datetime
    attempt: int
    recovered: bool = False


class SlotLedger:
    """One daemon's view of the slot table: claim, renew, finish, release, recover."""

    def __init__(self, store: Store, owner: str, lease: timedelta) -> None:
        self.store = store
        self.owner = owner
        self.lease = lease

    def claim(
        self, schedule: str, slot_at: datetime, *, now: datetime | None = None
    ) -> SlotClaim | None:
        """Own (schedule, slot_at), or None when another daemon already does."""
        now = now or utcnow()
        try:
            with self.store.write_transaction() as conn:
                slot_id = conn.execute(
                    insert(ScheduleSlotRow)
                    .values(
                        schedule=schedule,
                        slot_at=slot_at,
                        status="running",
                        owner=self.owner,
                        lease_until=now + self.lease,
                        attempts=1,
                        claimed_at=now,
                    )
                    .returning(ScheduleSlotRow.id)
                ).scalar_one()
        except IntegrityError:
            return self._take_over(schedule, slot_at, now)
        return SlotClaim(int(slot_id), schedule, slot_at, 1)

    def attach_run(self, claim: SlotClaim, run_id: int) -> None:
        with self.store.write_transaction() as conn:
            conn.execute(
                update(ScheduleSlotRow)
                .where(ScheduleSlotRow.id == claim.id, ScheduleSlotRow.owner == self.owner)
                .values(run_id=run_id)
            )

    def renew(self, claims: Iterable[SlotClaim], *, now: datetime | None = None) -> int:
        """Extend the leases of slots still ours; returns how many were renewed."""
        ids = [c.id for c in claims]
        if not ids:
            return 0
        now = now or utcnow()
        with self.store.write_transaction() as conn:
            return conn.execute(
                update(ScheduleSlotRow)
                .where(
                    ScheduleSlotRow.id.in_(ids),
                    ScheduleSlotRow.owner == self.owner,
                    ScheduleSlotRow.status == "running",
                )
                .values(lease_until=now + self.lease)
            ).rowcount

    def finish(self, claim: SlotClaim, status: str, error: str | None = None) -> bool:
        """Close the slot (done, failed); False if it was taken from us meanwhile."""
        assert status in FINAL
        with self.store.write_transaction() as conn:
            return bool(
                conn.execute(
                    update(ScheduleSlotRow)
                    .where(ScheduleSlotRow.id == claim.id, ScheduleSlotRow.owner == self.owner)
                    .values(status=status, finished_at=utcnow(), error=error)
                ).rowcount
            )

    def release(self, claim: SlotClaim) -> None:
        """Give an unfinished slot back (graceful shutdown): another daemon may run it now."""
        now = utcnow()
        with self.store.write_transaction() as conn:
            conn.execute(
                update(ScheduleSlotRow)
                .where(ScheduleSlotRow.id == claim.id, ScheduleSlotRow.owner == self.owner)
                .values(status="aborted", lease_until=now, finished_at=now)
            )

    def recover(
        self,
        schedules: Iterable[str],
        *,
        max_age: timedelta,
        now: datetime | None = None,
        limit: int = 10,
    ) -> list[SlotClaim]:
        """Take over slots whose owner died or let go; too-old ones are marked missed."""
        now = now or utcnow()
        names = list(schedules)
        query = (
            select(ScheduleSlotRow.id, ScheduleSlotRow.schedule, ScheduleSlotRow.slot_at)
            .where(
                ScheduleSlotRow.schedule.in_(names),
                ScheduleSlotRow.status.in_(RECOVERABLE),
                ScheduleSlotRow.lease_until < now,
                # our own slot with a lapsed lease is still running here: never run it twice
                ScheduleSlotRow.owner != self.owner,
            )
            .order_by(ScheduleSlotRow.slot_at)
            .limit(limit)
        )
        claims: list[SlotClaim] = []
        with self.store.write_transaction() as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for slot_id, schedule, slot_at in conn.execute(query).all():
                if slot_at < now - max_age:
                    conn.execute(
                        update(ScheduleSlotRow)
                        .where(ScheduleSlotRow.id == slot_id)
                        .values(status="missed", finished_at=now)
                    )
                    logger.warning("slot %s@%s is too old to re-run: missed", schedule, slot_at)
                    continue
                claim = self._take_over_row(conn, slot_id, schedule, slot_at, now)
                if claim is not None:
                    claims.append(claim)
        return claims

    def missing(self, schedule: str, slots: list[datetime]) -> list[datetime]:
        """Which of ``slots`` have no row at all (no daemon ever claimed them)."""
        if not slots:
            return []
        with self.store.engine.connect() as conn:
            known = set(
                conn.execute(
                    select(ScheduleSlotRow.slot_at).where(
                        ScheduleSlotRow.schedule == schedule,
                        ScheduleSlotRow.slot_at >= slots[0],
                        ScheduleSlotRow.slot_at <= slots[-1],
                    )
                ).scalars()
            )
        return [s for s in slots if s not in known]

    # --- internals ------------------------------------------------------------------------

    def _take_over(self, schedule: str, slot_at: datetime, now: datetime) -> SlotClaim | None:
        with self.store.write_transaction() as conn:
            slot_id = conn.execute(
                select(ScheduleSlotRow.id).where(
                    ScheduleSlotRow.schedule == schedule, ScheduleSlotRow.slot_at == slot_at
                )
            ).scalar_one_or_none()
            if slot_id is None:
                return None
            return self._take_over_row(conn, slot_id, schedule, slot_at, now)

    def _take_over_row(
        self, conn: Connection, slot_id: int, schedule: str, slot_at: datetime, now: datetime
    ) -> SlotClaim | None:
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
                owner=self.owner,
                lease_until=now + self.lease,
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
        logger.warning(
            "took over slot %s@%s from %s (attempt %d)",
            schedule,
            slot_at.isoformat(),
            previous.owner,
            previous.attempts + 1,
        )
        return SlotClaim(slot_id, schedule, slot_at, previous.attempts + 1, recovered=True)
