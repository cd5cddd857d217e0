"""`canary demo`: the whole loop on a fresh machine, in a few minutes, with nothing to set up.

It serves the simulated fleet in-process, probes it on the daemon's own code path (slots,
scoring against the reference model, CUSUM monitors), captures a baseline of the healthy fleet,
records a deploy, switches a real fault on in one pool (logits corrupted towards rare scripts),
and runs rounds until the canary alerts on that pool, attributed to that deploy. Slot times are
simulated hours, so the timeline reads like a day of operation.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from canary.alerts.model import Alert

DEMO_BASELINE = "demo-healthy"
DEMO_CHANGE = "demo-deploy-tpu-1"
FAULTY_POOL = "tpu-bf16"
FAULT = {"corrupt_logits": {"p": 0.05, "targets": "rare_script", "seed": 7}}
SCHEDULES = [{"name": "topk-pools", "suite": "topk", "every": "1h", "select": ["route=direct"]}]

Progress = Callable[[str], None]


@dataclass
class DemoResult:
    database_url: str
    healthy_rounds: int
    fault_rounds: int
    alerts: list[Alert] = field(default_factory=list)

    @property
    def detected(self) -> bool:
        return any(
            a.status == "firing"
            and a.labels.get("pool") == FAULTY_POOL
            and a.change_id == DEMO_CHANGE
            for a in self.alerts
        )


def run_demo(
    workdir: Path | None = None,
    *,
    healthy_rounds: int = 4,
    max_fault_rounds: int = 8,
    progress: Progress = lambda _: None,
) -> DemoResult:
    """Baseline → change → fault → alert, on a SQLite file in ``workdir`` (default: a temp dir)."""
    import httpx

    from canary.alerts.queries import list_alerts
    from canary.compare.baselines import capture_baseline
    from canary.daemon.config import DaemonConfig
    from canary.daemon.service import Daemon
    from canary.records import ResultFilter
    from canary.sim.embedded import embedded_fleet
    from canary.store import open_store
    from canary.store.changes import record_change

    workdir = workdir or Path(tempfile.mkdtemp(prefix="canary-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'canary.db'}"
    store = open_store(url)
    result = DemoResult(url, healthy_rounds, 0)
    progress(f"database {workdir / 'canary.db'}; starting the simulated fleet")
    with embedded_fleet() as fleet:
        admin = fleet.endpoints[0].base_url.removesuffix("/v1")
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
        probe_only = DaemonConfig.model_validate({"sim": True, "schedules": SCHEDULES})
        healthy = Daemon(probe_only, fleet, store, owner="canary-demo")
        for hour in range(healthy_rounds):
            outcomes = healthy.tick(start + timedelta(hours=hour))
            sent = sum(r.sent for o in outcomes for r in o.rounds)
            progress(f"healthy round {hour + 1}/{healthy_rounds}: {sent} probes scored")
        capture_baseline(
            store,
            DEMO_BASELINE,
            ResultFilter(),
            ("endpoint", "load"),
            note="the demo's healthy rounds",
            replace=True,
        )
        progress(f"baseline {DEMO_BASELINE!r} captured")

        record_change(
            store,
            DEMO_CHANGE,
            "deploy",
            {"pool": FAULTY_POOL},
            datetime.now(UTC),
            note="runtime upgrade (sampling kernel)",
        )
        httpx.put(f"{admin}/admin/pools/{FAULTY_POOL}/faults", json=FAULT).raise_for_status()
        progress(f"change {DEMO_CHANGE} recorded; fault corrupt_logits on in pool {FAULTY_POOL}")

        alerting = DaemonConfig.model_validate(
            {
                "sim": True,
                "schedules": SCHEDULES,
                "alerts": {"baseline": DEMO_BASELINE},
            }
        )
        daemon = Daemon(alerting, fleet, store, owner="canary-demo")
        for i in range(max_fault_rounds):
            hour = healthy_rounds + i
            outcomes = daemon.tick(start + timedelta(hours=hour))
            result.fault_rounds += 1
            fired = [
                t
                for o in outcomes
                for r in o.rounds
                for t in r.transitions
                if t["after"] == "firing"
            ]
            progress(
                f"round {i + 1} after the change: "
                + (f"{len(fired)} alert(s) firing" if fired else "no alert yet")
            )
            result.alerts = list_alerts(store, status=["firing", "pending"])
            if result.detected:
                break
    return result
