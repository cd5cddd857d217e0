"""The plugin's metric through canary's library, run in a fresh interpreter that has the plugin
installed (see `test_plugin_detector.py`): scored, baselined, compared, alerted on, reported.

Prints one JSON object of what each step saw; the test asserts on it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from canary.alerts.settings import AlertsConfig, monitored_policies, resolve_settings
from canary.compare import capture_baseline, run_compare
from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord
from canary.reports.format import detail_lines
from canary.scoring import score_stored
from canary.stats import DEFAULT_POLICIES
from canary.store import Store, open_store

T0 = datetime(2026, 11, 10, tzinfo=UTC)
SUITE = Suite(name="shout", probes=[Probe(id=f"s{i}", kind="shout", prompt="Hi") for i in range(4)])
ENDPOINT = EndpointConfig(name="gpu-a", base_url="http://a/v1", model="m")


def write_run(store: Store, n: int, shouting_every: int, start: datetime) -> int:
    """A scored run of ``n`` results, every ``shouting_every``-th one shouted (0: none)."""
    suite_id = store.register_suite(SUITE)
    store.register_endpoints([ENDPOINT])
    run_id = store.start_run(suite_id)
    labels = {**ENDPOINT.cohort_labels(), "load": "probe"}
    records = [
        ResultRecord(
            endpoint=ENDPOINT.name,
            probe_id=SUITE.probes[i % len(SUITE.probes)].id,
            repeat_index=i,
            session_id=f"{run_id}-{i}",
            labels=labels,
            request={},
            started_at=start + timedelta(seconds=i),
            latency_ms=100.0,
            attempts=1,
            output_text="HELLO THERE FRIEND"
            if shouting_every and i % shouting_every == 0
            else "Hello there, friend.",
            finish_reason="stop",
        )
        for i in range(n)
    ]
    store.save_results(run_id, suite_id, records)
    store.finish_run(run_id)
    return run_id


def main(workdir: Path) -> dict[str, Any]:
    store = open_store(f"sqlite:///{workdir / 'canary.db'}")
    healthy = write_run(store, 2000, 0, T0)
    scored = score_stored(store, ResultFilter(run_ids=(healthy,)), reference=False)
    baseline = capture_baseline(store, "healthy", ResultFilter(run_ids=(healthy,)), ["endpoint"])
    after = write_run(store, 600, 5, T0 + timedelta(hours=1))
    score_stored(store, ResultFilter(run_ids=(after,)), reference=False)
    comparison = run_compare(store, "healthy", f"run:{after}")

    config = AlertsConfig(baseline="healthy", metrics=["shouted"])
    settings = resolve_settings(store, config, monitors=1, rounds_per_year=8760)
    monitor = settings.detector_for(ENDPOINT.cohort_labels(), "shouted")

    from canary.reports import build_report

    report = build_report(
        store, ResultFilter(since=T0 + timedelta(minutes=30), until=T0 + timedelta(hours=2))
    )
    cells = [c for c in report.cells if c.metric == "shouted"]
    samples = [s for s in report.evidence if s.metric == "shouted"]
    return {
        "policy": DEFAULT_POLICIES["shouted"].model_dump(),
        "scored": scored.scored.get("shouted", 0),
        "baseline": baseline.aggregate.cohorts["endpoint=gpu-a"].metrics["shouted"].to_json(),
        "verdicts": {v.metric: v.verdict for v in comparison.verdicts},
        "gate": comparison.gate.status,
        "evidence": comparison.evidence.get("endpoint=gpu-a/shouted", []),
        "monitored": sorted(monitored_policies(config)),
        "monitor": monitor is not None,
        "report_metrics": report.metrics,
        "report_cells": [c.status for c in cells],
        "report_reference": report.reference,
        "samples": [
            {
                "spans": [[s.start, s.end, s.kind] for s in sample.spans],
                "lines": detail_lines(sample.metric, sample.detail),
            }
            for sample in samples
        ],
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
