"""run → store → score → judge: the one composition of a round, used by `canary run` and by the
daemon's slots (and, through the daemon, by the replay and the demo).

A round is sent and stored by `canary.runner.once.run_once`; its results are then scored, and a
completed round is fed to the alert monitors. Each caller keeps its own policy around it (signal
handling, stop flags, how it reports), and passes it in as values.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

from canary.config.fleet import EndpointConfig, FleetConfig
from canary.probes.model import Suite
from canary.records import ResultFilter
from canary.runner.once import StoredRound, run_once
from canary.store import Store

if TYPE_CHECKING:
    from canary.alerts.engine import EvaluationReport, Transition
    from canary.alerts.settings import AlertSettings
    from canary.scoring.pipeline import ScoringReport

__all__ = ["JudgedRound", "RoundOptions", "endpoint_templates", "run_and_judge"]


class RoundOptions(TypedDict, total=False):
    """How the round is sent and labelled: the keyword arguments of `run_once`."""

    load_shape: str
    trigger: str
    concurrency: int | None
    note: str | None
    stop_flag: threading.Event | None
    handle_signals: bool
    on_start: Callable[[int], None] | None
    repeat: int
    heartbeat_every: float


@dataclass(frozen=True)
class JudgedRound:
    """A stored round and what judging it produced."""

    stored: StoredRound
    scoring: ScoringReport | None = None
    """None when scoring was off, or the round did not complete and was not to be scored."""
    evaluation: EvaluationReport | None = None
    """None without alert settings or for a round that did not complete."""

    @property
    def transitions(self) -> list[Transition]:
        """The alerts this round moved to another state."""
        return list(self.evaluation.transitions) if self.evaluation else []

    @property
    def notifications(self) -> list[int]:
        """Outbox rows queued for the sinks: the caller dispatches them."""
        return list(self.evaluation.notifications) if self.evaluation else []


def run_and_judge(
    store: Store,
    fleet: FleetConfig,
    suite: Suite,
    endpoints: Sequence[EndpointConfig],
    *,
    score: bool = True,
    score_aborted: bool = False,
    alerts: AlertSettings | None = None,
    on_stored: Callable[[StoredRound], None] | None = None,
    **options: Unpack[RoundOptions],
) -> JudgedRound:
    """Send ``suite`` to ``endpoints`` once, store it, score it, and feed it to the monitors.

    Reference-based checks are judged against ``fleet.reference`` (resolve it first with
    `canary.config.reference.with_resolved_reference`); none means they are not made.

    Only a completed round is judged: an interrupted one is partial, and a monitor fed part of
    a round would see a smaller sample than its threshold assumes. It is scored only with
    ``score_aborted`` (`canary run` shows what an interrupted round stored; a stopping daemon
    leaves it). ``on_stored`` sees the stored round before judging starts, so a caller's record
    of the round survives a scoring failure.
    """
    stored = run_once(fleet, suite, store, endpoints, **options)
    if on_stored is not None:
        on_stored(stored)
    completed = stored.status == "completed"
    scoring = None
    if score and (completed or score_aborted):
        from canary.scoring import score_stored

        scoring = score_stored(
            store,
            ResultFilter(run_ids=(stored.run_id,)),
            reference=fleet.reference,
            chat_templates=endpoint_templates(fleet),
        )
    evaluation = None
    if completed and alerts is not None:
        from canary.alerts.engine import evaluate_run

        evaluation = evaluate_run(store, stored.run_id, alerts)
    return JudgedRound(stored, scoring, evaluation)


def endpoint_templates(fleet: FleetConfig) -> dict[str, str]:
    """Endpoint name → its own `chat_template:`, where it overrides the reference's."""
    return {e.name: e.chat_template for e in fleet.endpoints if e.chat_template is not None}
