"""The daemon: APScheduler fires each schedule; a fired slot is claimed, probed, scored, judged.

One job per schedule; a slot runs its load shapes one after another (a burst must not share
the server's batches with the single-probe load it is compared with). Around the schedules run
the housekeeping jobs: lease renewal and take-over of dead daemons' slots, the notification
outbox, the change drop directory and retention. `tick` does one slot of every schedule and
returns: the cron-friendly equivalent (`canary daemon --once`).

Shutdown: `stop()` (the first SIGTERM/SIGINT) stops new slots, lets each running round finish
its in-flight requests and flush them, marks the run aborted and releases the slot for another
daemon. Every write is a transaction, so there is never a half-written row whatever happens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canary.config.fleet import EndpointConfig, FleetConfig
from canary.daemon.adaptive_slots import rounds_of
from canary.daemon.catchup import CatchUpLedger
from canary.daemon.config import DaemonConfig, LoadShape, ScheduleConfig, check_control_bind
from canary.daemon.jobs import quietly
from canary.daemon.outcome import RoundOutcome, SlotOutcome
from canary.daemon.slots import SlotClaim, SlotLedger, daemon_identity
from canary.daemon.timing import (
    build_trigger,
    nominal_slot,
    period_of,
    slots_between,
)
from canary.probes.model import Suite
from canary.store import Store
from canary.store.models import utcnow
from canary.timespec import parse_duration

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from canary.alerts.settings import AlertSettings
    from canary.daemon.http import ControlServer
    from canary.daemon.metrics import DaemonMetrics
    from canary.runner.once import StoredRound

__all__ = ["Daemon", "RoundOutcome", "SlotOutcome"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Plan:
    schedule: ScheduleConfig
    suite: Suite
    endpoints: list[EndpointConfig]
    loads: list[LoadShape]


class Daemon:
    """Everything the daemon does, callable directly (tests, `--once`) or on a schedule."""

    def __init__(
        self,
        config: DaemonConfig,
        fleet: FleetConfig,
        store: Store,
        *,
        base_dir: Path = Path("."),
        owner: str | None = None,
        on_slot: Callable[[SlotOutcome], None] | None = None,
    ) -> None:
        from canary.alerts.sinks import build_sinks
        from canary.config.selection import select_endpoints
        from canary.daemon.metrics import DaemonMetrics
        from canary.probes import load_suite

        self.config = config
        self.fleet = fleet
        self.store = store
        self.base_dir = base_dir
        self.owner = owner or daemon_identity()
        self.ledger = SlotLedger(store, self.owner, parse_duration(config.lease))
        self.stop_flag = threading.Event()
        self.metrics: DaemonMetrics = DaemonMetrics()
        self.downtime = CatchUpLedger(
            store, self.owner, self.metrics, parse_duration(config.recover_within)
        )
        self.sinks = build_sinks(config.sinks)
        self.on_slot = on_slot
        self.plans = {
            s.name: _Plan(
                s,
                load_suite(s.suite),
                select_endpoints(fleet, s.endpoints, s.select),
                config.loads_of(s),
            )
            for s in config.schedules
        }
        self.store.register_endpoints(fleet.endpoints)
        self.alerts = self._alert_settings()
        self._held: dict[int, SlotClaim] = {}
        self._held_lock = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self.started_at = utcnow()
        self._control: ControlServer | None = None

    # --- one slot -------------------------------------------------------------------------

    def run_slot(self, schedule: str, slot_at: datetime) -> SlotOutcome:
        """Claim (schedule, slot_at) and run it, unless another daemon has it."""
        claim = self.ledger.claim(schedule, slot_at)
        if claim is None:
            self.metrics.slot_finished(schedule, "skipped")
            return SlotOutcome(schedule, slot_at, "skipped")
        return self.execute(claim)

    def execute(self, claim: SlotClaim) -> SlotOutcome:
        """Run every load of a claimed slot through the pipeline, then close or release it."""
        from canary.pipeline import run_and_judge

        plan = self.plans[claim.schedule]
        outcome = SlotOutcome(claim.schedule, claim.slot_at, "done", recovered=claim.recovered)

        def record(stored: StoredRound) -> None:
            load = stored.summary.load_shape
            endpoints = {e.endpoint: (e.sent, e.sent - e.ok) for e in stored.summary.endpoints}
            self.metrics.round_finished(claim.schedule, load, stored.status, endpoints)
            outcome.rounds.append(
                RoundOutcome(
                    load,
                    stored.run_id,
                    stored.status,
                    sent=sum(s for s, _ in endpoints.values()),
                    errors=sum(e for _, e in endpoints.values()),
                )
            )

        with self._held_lock:
            self._held[claim.id] = claim
        try:
            allocated = self._allocation(plan) if self.config.adaptive.enabled else None
            rounds = [
                (load, repeat, endpoints)
                for load in plan.loads
                for repeat, endpoints in rounds_of(plan.endpoints, load, allocated)
            ]
            for load, repeat, endpoints in rounds:
                if self.stop_flag.is_set():
                    outcome.status = "aborted"
                    break
                judged = run_and_judge(
                    self.store,
                    self.fleet,
                    plan.suite,
                    endpoints,
                    score=self.config.score,
                    alerts=self.alerts,
                    on_stored=record,
                    load_shape=load.name,
                    trigger="daemon",
                    concurrency=load.concurrency,
                    note=f"{claim.schedule} @ {claim.slot_at.isoformat()}",
                    stop_flag=self.stop_flag,
                    handle_signals=False,
                    repeat=repeat,
                    on_start=lambda run_id: self.ledger.attach_run(claim, run_id),
                )
                if judged.stored.status != "completed":
                    outcome.status = "aborted"
                    break
                if judged.notifications:
                    self.dispatch()
                outcome.rounds[-1].transitions = [t.__dict__ for t in judged.transitions]
        except Exception as exc:  # one bad slot must not stop the daemon
            logger.exception("slot %s@%s failed", claim.schedule, claim.slot_at.isoformat())
            outcome.status, outcome.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            with self._held_lock:
                self._held.pop(claim.id, None)
            if outcome.status == "aborted":
                self.ledger.release(claim)
            else:
                self.ledger.finish(claim, outcome.status, outcome.error)
            self.metrics.slot_finished(claim.schedule, outcome.status)
        if self.on_slot is not None:
            self.on_slot(outcome)
        return outcome

    def _allocation(self, plan: _Plan) -> dict[tuple[str, str], int] | None:
        """Repeats per (endpoint, load) for a slot of ``plan``, by its monitors' states."""
        if self.alerts is None:
            return None
        from canary.daemon.adaptive_slots import slot_allocation

        return slot_allocation(
            self.store,
            self.fleet,
            self.config.adaptive,
            period_of(plan.schedule).total_seconds(),
            len(plan.suite.probes),
            plan.loads,
            plan.endpoints,
        )

    # --- housekeeping ---------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[SlotOutcome]:
        """One slot of every schedule at its current nominal time, then housekeeping."""
        now = now or utcnow()
        outcomes = [
            self.run_slot(name, nominal_slot(p.schedule, now)) for name, p in self.plans.items()
        ]
        self.housekeeping()
        return outcomes

    def housekeeping(self) -> None:
        self.recover()
        self.dispatch()
        self.ingest_changes()

    def renew_leases(self) -> None:
        with self._held_lock:
            held = list(self._held.values())
        self.ledger.renew(held)

    def recover(self) -> list[SlotOutcome]:
        """Run slots other daemons died holding (or released on shutdown), and slots no daemon
        fired while this one was up (a scheduler thread too late to fire within its grace)."""
        if self.stop_flag.is_set():
            return []
        max_age = parse_duration(self.config.recover_within)
        claims = self.ledger.recover(self.plans, max_age=max_age)
        outcomes = [self.execute(c) for c in claims]
        now = utcnow()
        self.downtime.settle(now, self._run_late(outcomes))
        for name, plan in self.plans.items():
            period = period_of(plan.schedule)
            since = max(self.started_at, now - max_age)
            # Slots up to two periods back are still the scheduler's to fire.
            expected = slots_between(plan.schedule, since, now - 2 * period)
            for slot_at in self.ledger.missing(name, expected)[:10]:
                if self.stop_flag.is_set():
                    break
                logger.warning("slot %s@%s was never fired: running it late", name, slot_at)
                outcomes.append(self.run_slot(name, slot_at))
        return outcomes

    def catch_up(self, now: datetime | None = None) -> list[SlotOutcome]:
        """Count, log and (as each schedule's `catch_up` asks) run the slots that passed while
        no daemon was up; see `canary.daemon.catchup`. Runs once per daemon, at start."""
        now = now or utcnow()
        policies = {
            n: (p.schedule, self.config.catch_up_of(p.schedule)) for n, p in self.plans.items()
        }
        self.downtime.find(policies, now)
        outcomes: list[SlotOutcome] = []
        self.downtime.settle(now, self._run_late(outcomes))
        return outcomes

    def _run_late(self, outcomes: list[SlotOutcome]) -> Callable[[str, datetime], None]:
        def run(schedule: str, slot_at: datetime) -> None:
            if not self.stop_flag.is_set():  # stopping: left unclaimed for the next start
                outcomes.append(self.run_slot(schedule, slot_at))

        return run

    def preload(self) -> None:
        """Load the model stack before slot threads start (see `canary.daemon.preload`)."""
        if not self.config.score:
            return
        from canary.daemon.preload import needs_reference, preload_model_stack

        needed = needs_reference(p.suite for p in self.plans.values())
        preload_model_stack(reference=self.fleet.reference if needed else False)

    def dispatch(self) -> None:
        if not self.sinks:
            return
        from canary.alerts.outbox import deliver_due

        deliver_due(self.store, self.sinks, self.owner)

    def ingest_changes(self) -> None:
        if self.config.change_drop_dir is None:
            return
        from canary.daemon.dropdir import ingest_change_files

        directory = self.base_dir / self.config.change_drop_dir
        directory.mkdir(parents=True, exist_ok=True)
        ingest_change_files(self.store, directory, metrics=self.metrics)

    def prune(self) -> None:
        if self.config.retention is None:
            return
        from canary.store.retention import prune

        report = prune(self.store, self.config.retention)
        logger.info("retention: %s", report.to_dict())

    # --- running as a service --------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler (and the control endpoint); returns at once."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        if self.config.http is not None:
            check_control_bind(self.config.http, "daemon config")
        self.preload()
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(self.config.workers + 2)},
            job_defaults={"coalesce": True, "max_instances": 2},
            timezone="UTC",
        )
        for name, plan in self.plans.items():
            period = period_of(plan.schedule).total_seconds()
            scheduler.add_job(
                self._fire,
                build_trigger(plan.schedule),
                args=[name],
                id=f"schedule:{name}",
                misfire_grace_time=max(1, int(period / 2)),
            )
        lease = parse_duration(self.config.lease).total_seconds()
        housekeeping: list[tuple[str, Callable[[], Any], float]] = [
            ("renew", self.renew_leases, max(lease / 3, 0.5)),
            ("recover", self.recover, max(lease / 2, 1.0)),
            ("dispatch", self.dispatch, 2.0),
        ]
        poll, every = (parse_duration(self.config.change_poll), self.config.retention_every)
        if self.config.change_drop_dir is not None:
            housekeeping.append(("changes", self.ingest_changes, poll.total_seconds()))
        if self.config.retention is not None:
            housekeeping.append(("retention", self.prune, parse_duration(every).total_seconds()))
        for job_id, func, seconds in housekeeping:
            scheduler.add_job(
                quietly(func, job_id),
                IntervalTrigger(seconds=seconds, timezone="UTC"),
                id=job_id,
                max_instances=1,
                coalesce=True,
            )
        if self.config.http is not None:
            from canary.daemon.http import ControlServer, build_control_app

            app = build_control_app(self.store, self.metrics, token_env=self.config.http.token_env)
            self._control = ControlServer(app, self.config.http.host, self.config.http.port).start()
            logger.info("control endpoint on %s", self._control.url)
        self.started_at = utcnow()
        scheduler.add_job(quietly(self.catch_up, "catch-up"), id="catch-up")  # once, at start
        scheduler.start()
        self._scheduler = scheduler
        logger.info("daemon %s started: %d schedules", self.owner, len(self.plans))

    def stop(self, *, wait: bool = True) -> None:
        """Stop gracefully: no new slots; running rounds flush and their slots are released."""
        self.stop_flag.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None
        if self._control is not None:
            self._control.stop()
            self._control = None

    def _fire(self, schedule: str) -> None:
        if self.stop_flag.is_set():
            return
        slot_at = nominal_slot(self.plans[schedule].schedule, utcnow())
        outcome = self.run_slot(schedule, slot_at)
        if outcome.status != "skipped":
            logger.info(
                "slot %s@%s %s: %s",
                schedule,
                slot_at.isoformat(),
                outcome.status,
                ", ".join(f"{r.load} run {r.run_id} ({r.sent} sent)" for r in outcome.rounds),
            )

    def _alert_settings(self) -> AlertSettings | None:
        if self.config.alerts is None:
            return None
        from canary.daemon.jobs import alert_settings

        updates = [(len(p.endpoints) * len(p.loads), p.schedule) for p in self.plans.values()]
        return alert_settings(self.store, self.config.alerts, updates, tuple(self.sinks))
