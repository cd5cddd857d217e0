"""Scheduled slots shared by several daemons on one database: run once, never lost.

Every daemon fires every schedule; the first to insert the (schedule, slot time) row owns the
slot, the others' inserts hit the unique key and skip it. The owner holds a lease it renews
while it works. A daemon that dies stops renewing; once the lease is past, any other daemon
takes the slot over (`canary.store.slots` makes sure only one of them wins), and the dead
owner's half-done run is marked ``abandoned``. A daemon stopped gently releases its slot at
once. This module keeps the policy: when a lease ends, what is too old to re-run, what to log.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from canary.store import slots as table
from canary.store.slots import FINAL, SlotClaim

if TYPE_CHECKING:
    from canary.store import Store

logger = logging.getLogger(__name__)

__all__ = ["SlotClaim", "SlotLedger", "daemon_identity"]


def daemon_identity() -> str:
    """``host:pid:random``: unique per daemon process, readable in `canary doctor`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
        now = now or _utcnow()
        claim = table.claim_slot(self.store, schedule, slot_at, self.owner, now + self.lease, now)
        if claim is not None and claim.recovered:
            self._log_take_over(claim)
        return claim

    def attach_run(self, claim: SlotClaim, run_id: int) -> None:
        """Record the run the slot started, so a take-over can mark it abandoned."""
        table.attach_run(self.store, claim.id, self.owner, run_id)

    def renew(self, claims: Iterable[SlotClaim], *, now: datetime | None = None) -> int:
        """Extend the leases of slots still ours; returns how many were renewed."""
        ids = [c.id for c in claims]
        if not ids:
            return 0
        now = now or _utcnow()
        return table.renew_slots(self.store, ids, self.owner, now + self.lease)

    def finish(self, claim: SlotClaim, status: str, error: str | None = None) -> bool:
        """Close the slot (done, failed); False if it was taken from us meanwhile."""
        assert status in FINAL
        return table.finish_slot(self.store, claim.id, self.owner, status, error, _utcnow())

    def release(self, claim: SlotClaim) -> None:
        """Give an unfinished slot back (graceful shutdown): another daemon may run it now."""
        table.release_slot(self.store, claim.id, self.owner, _utcnow())

    def recover(
        self,
        schedules: Iterable[str],
        *,
        max_age: timedelta,
        now: datetime | None = None,
        limit: int = 10,
    ) -> list[SlotClaim]:
        """Take over slots whose owner died or let go; too-old ones are marked missed."""
        now = now or _utcnow()
        recovery = table.recover_slots(
            self.store,
            schedules,
            self.owner,
            lease_until=now + self.lease,
            now=now,
            missed_before=now - max_age,
            limit=limit,
        )
        for schedule, slot_at in recovery.missed:
            logger.warning("slot %s@%s is too old to re-run: missed", schedule, slot_at)
        for claim in recovery.claims:
            self._log_take_over(claim)
        return recovery.claims

    def missing(self, schedule: str, slots: list[datetime]) -> list[datetime]:
        """Which of ``slots`` have no row at all (no daemon ever claimed them)."""
        if not slots:
            return []
        known = table.known_slot_times(self.store, schedule, slots[0], slots[-1])
        return [s for s in slots if s not in known]

    @staticmethod
    def _log_take_over(claim: SlotClaim) -> None:
        logger.warning(
            "took over slot %s@%s from %s (attempt %d)",
            claim.schedule,
            claim.slot_at.isoformat(),
            claim.taken_from,
            claim.attempt,
        )
