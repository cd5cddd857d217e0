"""`canary daemon`: run the schedules of a daemon config until stopped, or one tick of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from canary.cli.options import DbOption, JsonOption, ReferenceOption
from canary.cli.output import console, print_json


def daemon(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="Daemon config file (see config/daemon.example.yaml)."),
    ],
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Run one slot of every schedule now, evaluate alerts, then exit (cron)."
        ),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning.")] = "info",
    reference: ReferenceOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Probe on schedule, score, alert per cohort and per change, until SIGTERM or Ctrl-C.

    The first signal stops gracefully: in-flight requests finish and are stored, the run is
    marked aborted and its slot released for another daemon. Several daemons may share one
    PostgreSQL database: each slot runs once, and a dead daemon's slot is taken over.
    """
    from canary.cli.logs import configure_logging
    from canary.daemon.launch import open_daemon, serve

    # Not basicConfig: the CLI's handler (secrets scrubbed) is already on the root logger.
    configure_logging(log_level, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open_daemon(config, db=db, reference=reference) as d:
        if not once:
            serve(d)
            return
        outcomes = d.tick()
    if json:
        print_json({"slots": [o.to_dict() for o in outcomes]})
        return
    for o in outcomes:
        rounds = ", ".join(f"{r.load}: run {r.run_id} {r.status}" for r in o.rounds) or "-"
        console.print(f"{o.schedule} @ {o.slot_at:%Y-%m-%d %H:%M:%S} {o.status}: {rounds}")
        for r in o.rounds:
            for t in r.transitions:
                console.print(f"  alert {t['alert_id']} {t['metric']} {t['before']} → {t['after']}")
