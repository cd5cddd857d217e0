"""Request- vs session-level impact: a small request rate can be a large session rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord
from canary.scoring import score_stored
from canary.store import open_store
from canary.store.impact import session_impact

T0 = datetime(2026, 11, 2, tzinfo=UTC)
SUITE = Suite(
    name="chat",
    probes=[Probe(id=f"turn-{i}", kind="routing", prompt=f"t{i}", session="s") for i in range(5)],
)
ENDPOINTS = [
    EndpointConfig(name="door", base_url="http://d/v1", model="m", labels={"route": "front-door"}),
    EndpointConfig(name="pool", base_url="http://p/v1", model="m", labels={"route": "direct"}),
]


def test_sticky_bad_sessions_show_a_much_larger_session_rate(any_db_url: str) -> None:
    store = open_store(any_db_url)
    suite_id = store.register_suite(SUITE)
    store.register_endpoints(ENDPOINTS)
    run_id = store.start_run(suite_id)
    records = []
    # 20 sessions of 5 turns at the door; 4 sessions were "misrouted" and got one Thai answer each.
    for endpoint in ("door", "pool"):
        for session in range(20):
            for turn in range(5):
                bad = endpoint == "door" and session < 4 and turn == 2
                records.append(
                    ResultRecord(
                        endpoint=endpoint,
                        probe_id=f"turn-{turn}",
                        repeat_index=0,
                        session_id=f"{endpoint}-{session}",
                        labels={"endpoint": endpoint, "model": "m", "load": "probe"},
                        request={},
                        started_at=T0 + timedelta(seconds=session * 5 + turn),
                        latency_ms=1.0,
                        attempts=1,
                        output_text="the answer is สวัสดี here" if bad else "the answer is here",
                    )
                )
    store.save_results(run_id, suite_id, records)
    score_stored(store, ResultFilter(run_ids=(run_id,)), reference=False)

    impact = {c.labels["endpoint"]: c for c in session_impact(store, metrics=["unexpected_script"])}
    door, pool = impact["door"], impact["pool"]
    assert (door.requests, door.flagged_requests, door.sessions, door.flagged_sessions) == (
        100,
        4,
        20,
        4,
    )
    assert door.request_rate == 0.04 and door.session_rate == 0.2
    assert pool.flagged_requests == 0 and pool.session_rate == 0.0

    door_only = ResultFilter(labels={"endpoint": "door"})
    only_door = session_impact(store, door_only, group_by=("model",))
    assert [(c.labels, c.requests, c.flagged_sessions) for c in only_door] == [
        ({"model": "m"}, 100, 4)
    ]
    assert session_impact(store, ResultFilter(since=T0 + timedelta(days=1))) == []
