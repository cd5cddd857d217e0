"""Adaptive probing: pending cohorts get more of a slot's repeats, quiet ones pay, the slot's
total never grows, endpoint limits cap a boost; and the daemon sends what was allocated."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.daemon.adaptive import Unit, allocate, repeat_cap, unit_status
from canary.daemon.config import DaemonConfig


def units(*specs: tuple[str, int, str]) -> list[Unit]:
    return [Unit(name, "c8", base, cap=1_000, status=status) for name, base, status in specs]  # type: ignore[arg-type]


def test_pending_cohorts_take_repeats_from_quiet_ones() -> None:
    got = allocate(units(("a", 4, "pending"), ("b", 4, "ok"), ("c", 4, "ok")), max_boost=4)
    assert got[("a", "c8")] == 10, "a quiet cohort keeps a quarter of its repeats: 3 each move"
    assert got[("b", "c8")] == got[("c", "c8")] == 1
    assert sum(got.values()) == 12


def test_nothing_moves_without_a_pending_cohort_or_a_quiet_one() -> None:
    calm = units(("a", 4, "ok"), ("b", 4, "ok"))
    assert allocate(calm, max_boost=4) == {("a", "c8"): 4, ("b", "c8"): 4}
    busy = units(("a", 4, "pending"), ("b", 4, "firing"))
    assert allocate(busy, max_boost=4) == {("a", "c8"): 4, ("b", "c8"): 4}


def test_firing_cohorts_keep_their_repeats() -> None:
    got = allocate(units(("a", 2, "pending"), ("b", 3, "firing"), ("c", 4, "ok")), max_boost=2)
    assert got[("b", "c8")] == 3
    assert got[("a", "c8")] == 4 and got[("c", "c8")] == 2


def test_the_boost_is_capped_by_max_boost_and_the_endpoint_limit() -> None:
    capped = [
        Unit("a", "c8", 2, cap=3, status="pending"),
        Unit("b", "c8", 8, cap=1_000, status="ok"),
    ]
    assert allocate(capped, max_boost=4) == {("a", "c8"): 3, ("b", "c8"): 7}
    free = [Unit("a", "c8", 2, cap=1_000, status="pending"), Unit("b", "c8", 8, 1_000)]
    assert allocate(free, max_boost=4)[("a", "c8")] == 8


def test_two_pending_cohorts_share_what_is_free() -> None:
    got = allocate(
        units(("a", 2, "pending"), ("b", 2, "pending"), ("c", 4, "ok"), ("d", 4, "ok")),
        max_boost=4,
    )
    assert got[("a", "c8")] == got[("b", "c8")] == 5
    assert got[("c", "c8")] == got[("d", "c8")] == 1


@given(
    st.lists(
        st.tuples(
            st.integers(1, 12),
            st.integers(1, 40),
            st.sampled_from(["ok", "pending", "firing"]),
        ),
        min_size=1,
        max_size=8,
    ),
    st.floats(1.0, 8.0),
)
def test_the_slot_never_sends_more_and_nobody_drops_below_the_floor(
    specs: list[tuple[int, int, str]], boost: float
) -> None:
    given_units = [
        Unit(f"e{i}", "probe", base, cap=max(base, cap), status=status)  # type: ignore[arg-type]
        for i, (base, cap, status) in enumerate(specs)
    ]
    got = allocate(given_units, boost)
    assert sum(got.values()) <= sum(u.base for u in given_units)
    for u in given_units:
        repeats = got[(u.endpoint, u.load)]
        assert repeats >= 1
        if u.status == "pending":
            assert u.base <= repeats <= max(u.base, min(int(u.base * boost), u.cap))
        elif u.status == "firing":
            assert repeats == u.base
        else:
            assert repeats <= u.base and repeats * boost >= u.base - 1e-9


def test_rate_limits_cap_a_slot() -> None:
    assert repeat_cap(1, 23, period_s=600, rate_limit_rps=None) >= 1_000
    assert repeat_cap(1, 23, period_s=600, rate_limit_rps=0.5) == 6  # 150 requests / 23
    assert repeat_cap(4, 23, period_s=60, rate_limit_rps=0.1) == 4, "never below the configured"


def test_a_unit_is_pending_if_any_of_its_monitors_is() -> None:
    statuses = [
        {"endpoint": "a", "load": "c8", "status": "firing"},
        {"endpoint": "a", "load": "c8", "status": "pending"},
        {"endpoint": "b", "load": "c8", "status": "firing"},
        {"endpoint": "a", "load": "probe", "status": "firing"},
    ]
    assert unit_status(statuses, "a", "c8") == "pending"
    assert unit_status(statuses, "b", "c8") == "firing"
    assert unit_status(statuses, "c", "c8") == "ok"


def test_adaptive_is_opt_in_and_needs_alerts() -> None:
    schedules = [{"name": "a", "suite": "topk", "every": "10m"}]
    plain = DaemonConfig.model_validate({"sim": True, "schedules": schedules})
    assert plain.adaptive.enabled is False
    with pytest.raises(ValueError, match="needs an 'alerts' block"):
        DaemonConfig.model_validate(
            {"sim": True, "schedules": schedules, "adaptive": {"enabled": True}}
        )
    with pytest.raises(ValueError, match="max_boost"):
        DaemonConfig.model_validate(
            {
                "sim": True,
                "schedules": schedules,
                "alerts": {"baseline": "b"},
                "adaptive": {"enabled": True, "max_boost": 0.5},
            }
        )


@pytest.mark.slow
def test_the_daemon_sends_a_pending_cohort_more_of_the_slot(sqlite_url: str) -> None:
    """On the simulated fleet: after a monitor of one pool goes pending, the next slot sends
    that pool more sessions and the quiet pools fewer, the slot's total unchanged."""
    from canary.replay.warmup import baseline_then_alerting
    from canary.sim.embedded import embedded_fleet
    from canary.store import open_store
    from canary.store.alert_values import alert_fingerprint
    from canary.store.alerts import alert_transaction

    store = open_store(sqlite_url)
    schedule = {
        "name": "pools",
        "suite": "topk",
        "select": ["route=direct"],
        "every": "1h",
        "loads": [{"name": "probe", "concurrency": 4, "repeat": 2}],
    }
    start = datetime(2026, 11, 24, tzinfo=UTC)
    with embedded_fleet() as fleet:
        daemon = baseline_then_alerting(
            store,
            fleet,
            [start],
            healthy={"sim": True, "schedules": [schedule]},
            alerting={
                "sim": True,
                "schedules": [schedule],
                "alerts": {},
                "adaptive": {"enabled": True, "max_boost": 2},
            },
            baseline="healthy",
            note="one healthy slot",
        )
        (first,) = daemon.tick(start + timedelta(hours=1))
        assert first.status == "done" and len(first.rounds) == 1, "all quiet: one round"
        pools = sorted(daemon.plans["pools"].endpoints, key=lambda e: e.name)
        assert len(pools) >= 2
        pending = pools[0]
        # A monitor of that pool goes pending, as the engine leaves one (the store's own API).
        labels = next(
            dict(r.labels)
            for r in store.results_for_run(first.rounds[0].run_id)
            if r.endpoint == pending.name
        )
        now = datetime.now(UTC)
        with alert_transaction(store) as tx:
            record = tx.lock_monitor(
                alert_fingerprint(labels, "first_divergence"), labels, "first_divergence", now
            )
            tx.save_monitor(record.id, status="pending", state=record.state, alert_id=None, now=now)
        (second,) = daemon.tick(start + timedelta(hours=2))
    assert second.status == "done" and len(second.rounds) == 2
    sent = Counter[str]()
    for r in second.rounds:
        for result in store.results_for_run(r.run_id):
            sent[result.endpoint] += 1
    suite = len(daemon.plans["pools"].suite.probes)
    assert sent[pending.name] > 2 * suite, "boosted beyond its 2 repeats"
    assert sent[pending.name] <= 4 * suite, "at most max_boost × its repeats"
    assert sum(sent.values()) == 2 * suite * len(pools), "the slot's total is unchanged"
    assert all(sent[e.name] < 2 * suite for e in pools[1:]), sent
