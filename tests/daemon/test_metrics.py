"""DaemonMetrics: counters from the daemon's work, gauges read from the store."""

from __future__ import annotations

import pytest

from canary.daemon.metrics import DaemonMetrics
from canary.store import Store
from tests.daemon.rows import add_alert, add_delivery, add_monitor

TPU = {"endpoint": "tpu-1", "pool": "tpu", "load": "probe"}


def test_round_finished_counts_rounds_and_probes_by_outcome() -> None:
    metrics = DaemonMetrics()
    metrics.round_finished("every-5m", "burst8", "completed", {"tpu-1": (10, 2), "gpu-1": (5, 0)})
    metrics.round_finished("every-5m", "burst8", "completed", {"tpu-1": (10, 0)})
    value = metrics.registry.get_sample_value
    rounds = {"schedule": "every-5m", "load": "burst8", "status": "completed"}
    assert value("canary_rounds_total", rounds) == 2
    assert (
        value("canary_probes_total", {"endpoint": "tpu-1", "load": "burst8", "outcome": "ok"}) == 18
    )
    assert (
        value("canary_probes_total", {"endpoint": "tpu-1", "load": "burst8", "outcome": "error"})
        == 2
    )
    assert (
        value("canary_probes_total", {"endpoint": "gpu-1", "load": "burst8", "outcome": "error"})
        == 0
    )


def test_impossible_counts_are_refused_before_anything_is_counted() -> None:
    metrics = DaemonMetrics()
    with pytest.raises(ValueError, match="3 errors of 2 sent"):
        metrics.round_finished("s", "probe", "completed", {"a": (5, 0), "b": (2, 3)})
    assert (
        metrics.registry.get_sample_value(
            "canary_rounds_total", {"schedule": "s", "load": "probe", "status": "completed"}
        )
        is None
    )


def test_registries_are_private_to_each_instance() -> None:
    first, second = DaemonMetrics(), DaemonMetrics()
    first.change_recorded("http")
    assert first.registry.get_sample_value("canary_changes_recorded_total", {"source": "http"}) == 1
    assert (
        second.registry.get_sample_value("canary_changes_recorded_total", {"source": "http"})
        is None
    )


def test_refresh_reads_monitors_alerts_and_the_outbox(store: Store) -> None:
    add_monitor(store, TPU | {"region": "eu"}, "unexpected_token", score=3.5, last_k=2, last_n=50)
    add_monitor(store, TPU | {"region": "us"}, "unexpected_token", score=1.0, last_k=0, last_n=50)
    add_monitor(store, {"endpoint": "gpu-1"}, "unexpected_token", score=0.2)
    add_alert(store, TPU, "unexpected_token", "firing")
    add_alert(store, TPU | {"region": "us"}, "unexpected_token", "firing")
    add_alert(store, TPU, "entropy", "pending")
    add_alert(store, TPU, "topk", "resolved")
    add_delivery(store, "slack", "pending")
    add_delivery(store, "pager", "delivered")

    metrics = DaemonMetrics()
    metrics.refresh_from_store(store)
    value = metrics.registry.get_sample_value
    tpu = {"metric": "unexpected_token", **TPU}
    gpu = {"metric": "unexpected_token", "endpoint": "gpu-1", "pool": "", "load": ""}
    # Two regions share one series: the larger evidence, the pooled rate.
    assert value("canary_monitor_score", tpu) == 3.5
    assert value("canary_monitor_rate", tpu) == pytest.approx(2 / 100)
    assert value("canary_monitor_score", gpu) == pytest.approx(0.2)
    assert value("canary_monitor_rate", gpu) is None  # no round yet
    assert value("canary_alerts", {"status": "firing", **tpu}) == 2
    assert value("canary_alerts", {"status": "pending", "metric": "entropy", **TPU}) == 1
    assert value("canary_alerts", {"status": "resolved", "metric": "topk", **TPU}) is None
    assert value("canary_outbox_pending") == 1


def test_a_refresh_replaces_series_that_are_gone(store: Store) -> None:
    metrics = DaemonMetrics()
    add_alert(store, TPU, "entropy", "pending")
    metrics.refresh_from_store(store)
    assert b'status="pending"' in metrics.exposition()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alerts SET status = 'resolved'")
    metrics.refresh_from_store(store)
    assert b'status="pending"' not in metrics.exposition()
