"""The slot ledger on both databases: one owner per slot, take-over after a lease runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canary.daemon.slots import SlotLedger
from canary.store import open_store

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def test_a_slot_has_one_owner_until_its_lease_runs_out(any_db_url: str) -> None:
    store = open_store(any_db_url)
    a, b = SlotLedger(store, "host:1:a", LEASE), SlotLedger(store, "host:2:b", LEASE)
    claim = a.claim("topk", T0, now=T0)
    assert claim is not None and claim.attempt == 1
    assert b.claim("topk", T0, now=T0 + timedelta(seconds=10)) is None
    assert b.claim("topk", T0 + timedelta(minutes=5), now=T0) is not None  # another slot is free

    # A stops renewing (it died): after the lease, B takes the slot, exactly once.
    later = T0 + LEASE + timedelta(seconds=1)
    taken = b.recover(["topk"], max_age=timedelta(hours=1), now=later)
    assert [(c.schedule, c.slot_at, c.attempt, c.recovered) for c in taken] == [
        ("topk", T0, 2, True)
    ]
    assert b.recover(["topk"], max_age=timedelta(hours=1), now=later) == []
    assert not a.finish(claim, "done"), "the dead owner can no longer close a slot it lost"


def test_renewed_leases_are_not_taken_and_released_slots_are(any_db_url: str) -> None:
    store = open_store(any_db_url)
    a, b = SlotLedger(store, "host:1:a", LEASE), SlotLedger(store, "host:2:b", LEASE)
    claim = a.claim("topk", T0, now=T0)
    assert claim is not None
    assert a.renew([claim], now=T0 + timedelta(seconds=25)) == 1
    assert b.recover(["topk"], max_age=timedelta(hours=1), now=T0 + timedelta(seconds=40)) == []
    a.release(claim)  # graceful shutdown: give it back at once
    taken = b.recover(["topk"], max_age=timedelta(days=3650))
    assert [c.slot_at for c in taken] == [T0]


def test_orphans_too_old_to_rerun_are_marked_missed(any_db_url: str) -> None:
    store = open_store(any_db_url)
    a, b = SlotLedger(store, "host:1:a", LEASE), SlotLedger(store, "host:2:b", LEASE)
    assert a.claim("topk", T0, now=T0) is not None
    assert b.recover(["topk"], max_age=timedelta(hours=1), now=T0 + timedelta(hours=2)) == []
    assert b.missing("topk", [T0, T0 + timedelta(hours=1)]) == [T0 + timedelta(hours=1)]
