"""The outbox against a real loopback receiver: at-least-once, retried, shared by daemons."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import select

from canary.alerts.outbox import deliver_due
from canary.alerts.sinks import Sink, SinkConfig, build_sinks
from canary.store import Store
from canary.store.migrate import open_store
from canary.store.models import DeliveryRow, NotificationRow
from canary.store.outbox import enqueue_notification, pending_deliveries
from tests.alerts.helpers import T0, Receiver, make_payload

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkConfig)


def webhook(url: str, name: str = "webhook", **config: Any) -> dict[str, Sink[Any]]:
    return build_sinks(
        [ADAPTER.validate_python({"type": "webhook", "name": name, "url": url, **config})]
    )


def enqueue(store: Store, sink_names: Sequence[str], at: datetime = T0, **kw: Any) -> int:
    with store.engine.begin() as conn:
        return enqueue_notification(conn, make_payload(**kw), sink_names, now=at)


def delivery(store: Store, notification_id: int, sink: str = "webhook") -> Any:
    with store.engine.connect() as conn:
        return conn.execute(
            select(DeliveryRow).where(
                DeliveryRow.notification_id == notification_id, DeliveryRow.sink == sink
            )
        ).one()


def test_enqueue_commits_with_the_callers_transaction(store: Store) -> None:
    with store.engine.begin() as conn:
        nid = enqueue_notification(conn, make_payload(), ["webhook", "stdout", "webhook"], now=T0)
    with store.engine.connect() as conn:
        row = conn.execute(select(NotificationRow)).one()
        sinks = conn.execute(select(DeliveryRow.sink).order_by(DeliveryRow.sink)).scalars().all()
    assert row.payload["notification_id"] == nid == row.id
    assert (row.group_key, row.status) == ("change:deploy-7", "firing")
    assert sinks == ["stdout", "webhook"]
    assert pending_deliveries(store) == 2

    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        enqueue_notification(conn, make_payload(), ["webhook"], now=T0)
        raise RuntimeError("the alert state change failed")
    assert pending_deliveries(store) == 2


def test_delivered_exactly_once(store: Store, receiver: Receiver) -> None:
    sinks = webhook(receiver.url)
    nid = enqueue(store, ["webhook"])
    report = deliver_due(store, sinks, "d1", now=T0)
    assert (report.delivered, report.retried, report.expired, report.errors) == (1, 0, 0, ())
    assert deliver_due(store, sinks, "d1", now=T0 + timedelta(hours=1)).delivered == 0
    (request,) = receiver.requests
    assert request.body == {**make_payload(), "notification_id": nid}
    assert request.headers["Content-Type"] == "application/json"
    row = delivery(store, nid)
    assert (row.status, row.attempts, row.delivered_at, row.locked_until) == (
        "delivered",
        1,
        T0,
        None,
    )
    assert pending_deliveries(store) == 0


def test_server_errors_are_retried_with_growing_backoff(store: Store, receiver: Receiver) -> None:
    receiver.statuses = [500, 500]
    sinks = webhook(receiver.url)
    nid = enqueue(store, ["webhook"])

    first = deliver_due(store, sinks, "d1", now=T0)
    assert first.retried == 1 and "HTTP 500" in first.errors[0]
    row = delivery(store, nid)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "HTTP 500" in row.last_error and row.locked_until is None
    first_delay = row.next_attempt_at - T0
    assert timedelta(seconds=0.75) <= first_delay <= timedelta(seconds=1)

    assert deliver_due(store, sinks, "d1", now=T0).retried == 0  # not due yet
    second_try = row.next_attempt_at
    assert deliver_due(store, sinks, "d1", now=second_try).retried == 1
    row = delivery(store, nid)
    second_delay = row.next_attempt_at - second_try
    assert row.attempts == 2 and second_delay > first_delay

    assert deliver_due(store, sinks, "d1", now=row.next_attempt_at).delivered == 1
    row = delivery(store, nid)
    assert (row.status, row.attempts) == ("delivered", 3)
    assert len(receiver.requests) == 3


def test_a_receiver_that_is_down_loses_nothing(store: Store, receiver: Receiver) -> None:
    sinks = webhook(receiver.url)
    receiver.stop()
    ids = [enqueue(store, ["webhook"]) for _ in range(3)]

    report = deliver_due(store, sinks, "d1", now=T0)
    assert (report.delivered, report.retried) == (0, 3)
    assert all("ConnectError" in e for e in report.errors)
    assert pending_deliveries(store) == 3

    receiver.start()
    report = deliver_due(store, sinks, "d1", now=T0 + timedelta(seconds=5))
    assert report.delivered == 3
    assert sorted(r.body["notification_id"] for r in receiver.requests) == ids


def test_client_errors_are_retried_too(store: Store, receiver: Receiver) -> None:
    receiver.statuses = [404]
    sinks = webhook(receiver.url)
    nid = enqueue(store, ["webhook"])
    report = deliver_due(store, sinks, "d1", now=T0)
    assert report.retried == 1 and "check the sink config" in report.errors[0]
    assert deliver_due(store, sinks, "d1", now=T0 + timedelta(seconds=2)).delivered == 1
    assert delivery(store, nid).attempts == 2


def test_expired_after_give_up_after_s(
    store: Store, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [503] * 10
    sinks = webhook(receiver.url, retry={"initial_backoff_s": 4, "give_up_after_s": 10})
    nid = enqueue(store, ["webhook"])
    assert deliver_due(store, sinks, "d1", now=T0).retried == 1
    assert deliver_due(store, sinks, "d1", now=T0 + timedelta(seconds=4)).retried == 1
    # The next retry would come after the deadline: it is pulled in to the deadline itself.
    assert delivery(store, nid).next_attempt_at == T0 + timedelta(seconds=10)

    with caplog.at_level(logging.ERROR, logger="canary.alerts"):
        report = deliver_due(store, sinks, "d1", now=T0 + timedelta(seconds=10))
    assert report.expired == 1
    row = delivery(store, nid)
    assert (row.status, row.attempts) == ("expired", 3)
    assert "gave up on notification" in caplog.text and "HTTP 503" in caplog.text
    assert pending_deliveries(store) == 0
    assert deliver_due(store, sinks, "d1", now=T0 + timedelta(days=2)).expired == 0


def test_a_delivery_due_long_after_its_deadline_expires_unsent(
    store: Store, receiver: Receiver
) -> None:
    sinks = webhook(receiver.url, retry={"give_up_after_s": 60})
    nid = enqueue(store, ["webhook"])
    assert deliver_due(store, sinks, "d1", now=T0 + timedelta(minutes=5)).expired == 1
    assert receiver.requests == [] and delivery(store, nid).status == "expired"


def test_unconfigured_sinks_stay_pending_with_one_warning(
    store: Store, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    gone = f"gone-{uuid.uuid4().hex[:8]}"
    nid = enqueue(store, ["webhook", gone])
    sinks = webhook(receiver.url)
    with caplog.at_level(logging.WARNING, logger="canary.alerts"):
        first = deliver_due(store, sinks, "d1", now=T0)
        second = deliver_due(store, sinks, "d1", now=T0 + timedelta(days=3))
    assert (first.delivered, first.unconfigured, second.unconfigured) == (1, 1, 1)
    assert sum(gone in r.getMessage() for r in caplog.records) == 1
    assert delivery(store, nid, gone).status == "pending"
    assert deliver_due(store, webhook(receiver.url, name=gone), "d2", now=T0).delivered == 1


def test_secrets_stay_out_of_rows_errors_and_logs(
    store: Store,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token, bearer = "T0KEN-abcdef-123456", "s3cr3t-bearer-value"
    monkeypatch.setenv("CANARY_TEST_HOOK_URL", f"{receiver.url}/hooks/{token}")
    monkeypatch.setenv("CANARY_TEST_HOOK_AUTH", f"Bearer {bearer}")
    (config,) = [
        ADAPTER.validate_python(
            {
                "type": "webhook",
                "url_env": "CANARY_TEST_HOOK_URL",
                "headers_env": {"Authorization": "CANARY_TEST_HOOK_AUTH"},
            }
        )
    ]
    sinks = build_sinks([config])
    receiver.statuses = [401]  # its body echoes the path, token included
    nid = enqueue(store, ["webhook"])
    with caplog.at_level(logging.DEBUG):
        report = deliver_due(store, sinks, "d1", now=T0)
    monkeypatch.delenv("CANARY_TEST_HOOK_AUTH")
    with caplog.at_level(logging.DEBUG):
        missing = deliver_due(store, sinks, "d1", now=T0 + timedelta(seconds=5))
    assert receiver.requests[0].path == f"/hooks/{token}"
    assert receiver.requests[0].headers["Authorization"] == f"Bearer {bearer}"
    assert "environment variable CANARY_TEST_HOOK_AUTH" in missing.errors[0]

    row = delivery(store, nid)
    with store.engine.connect() as conn:
        stored = [str(tuple(r)) for r in conn.execute(select(NotificationRow)).all()]
    texts = [*report.errors, *missing.errors, str(tuple(row)), *stored, caplog.text]
    assert "failed for ***" in report.errors[0]
    assert "HTTP Request: POST ***" in caplog.text  # httpx's own log of the request
    for text in texts:
        assert token not in text and bearer not in text


@pytest.mark.parametrize("n", [12])
def test_racing_daemons_deliver_each_notification_once(
    any_db_url: str, receiver: Receiver, n: int
) -> None:
    stores = [open_store(any_db_url), open_store(any_db_url)]
    try:
        ids = [enqueue(stores[0], ["webhook"]) for _ in range(n)]
        start = threading.Barrier(2)
        reports: list[Any] = []

        def daemon(store: Store, owner: str) -> None:
            start.wait()
            reports.append(deliver_due(store, webhook(receiver.url), owner, now=T0))

        threads = [threading.Thread(target=daemon, args=(s, f"d{i}")) for i, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sum(r.delivered for r in reports) == n
        assert sorted(r.body["notification_id"] for r in receiver.requests) == ids
        assert pending_deliveries(stores[0]) == 0
    finally:
        for store in stores:
            store.close()
