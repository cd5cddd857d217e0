"""`canary run`: send a suite to the selected endpoints once and store every result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from canary.cli.options import (
    DEFAULT_FLEET,
    DbOption,
    EndpointOption,
    FleetOption,
    JsonOption,
    ReferenceOption,
    SelectOption,
)
from canary.cli.output import console, err_console, fmt_ms, print_json
from canary.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from canary.config import EndpointConfig, FleetConfig


def run(
    suite: Annotated[str, typer.Option("--suite", help="Suite name (see probes/) or file path.")],
    fleet: FleetOption = DEFAULT_FLEET,
    endpoint: EndpointOption = None,
    select: SelectOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="One round, then exit (the default; for cron).")
    ] = True,
    load_shape: Annotated[
        str, typer.Option("--load-shape", help="Load-shape label stored with every result.")
    ] = "probe",
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            help="Requests in flight per endpoint, capped by each endpoint's "
            "limits.concurrency in the fleet file (a notice names each capped endpoint).",
        ),
    ] = None,
    sim: Annotated[
        bool,
        typer.Option(
            "--sim", help="Start the embedded simulated fleet and probe it (ignores --fleet)."
        ),
    ] = False,
    score: Annotated[
        bool, typer.Option("--score/--no-score", help="Score the round's results when it ends.")
    ] = True,
    reference: ReferenceOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Send SUITE to every selected endpoint once; every request and output goes to the store.

    Exit code 0 when the round completed (error responses are stored as results), 5 when some
    endpoint answered no request at all, 3 for bad config, 4 for database problems.
    """
    from canary.cli.fleet_setup import probing_setup
    from canary.pipeline import run_and_judge
    from canary.probes import load_suite

    loaded_suite = load_suite(suite)
    with probing_setup(
        fleet, sim=sim, reference=reference, endpoints=endpoint or (), select=select or (), db=db
    ) as setup:
        fleet_config, targets, store = setup.fleet, setup.targets, setup.store
        if concurrency is not None:
            _notice_capped(fleet_config, targets, concurrency)
        if not json:
            console.print(
                f"[bold]{loaded_suite.name}[/] v{loaded_suite.version}: "
                f"{len(loaded_suite.probes)} probes → {len(targets)} endpoints"
            )
        judged = run_and_judge(
            store,
            fleet_config,
            loaded_suite,
            targets,
            score=score,
            score_aborted=True,
            load_shape=load_shape,
            concurrency=concurrency,
        )
    stored, scoring = judged.stored, judged.scoring
    rows = stored.summary.endpoints
    if json:
        print_json(
            {
                "run_id": stored.run_id,
                "suite": stored.suite,
                "suite_version": stored.suite_version,
                "status": stored.status,
                "endpoints": [
                    {
                        "endpoint": r.endpoint,
                        "sent": r.sent,
                        "ok": r.ok,
                        "errors": dict(r.errors),
                        "p50_ms": r.p50_ms,
                        "p95_ms": r.p95_ms,
                    }
                    for r in rows
                ],
                "scoring": scoring.to_dict() if scoring else None,
            }
        )
    else:
        table = Table(title=f"run {stored.run_id} ({stored.status})")
        for column in ("endpoint", "sent", "ok", "errors", "p50", "p95"):
            table.add_column(
                column, justify="left" if column in ("endpoint", "errors") else "right"
            )
        for r in rows:
            errors = ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "-"
            style = "red" if r.ok == 0 else ("yellow" if r.errors else "")
            table.add_row(
                r.endpoint,
                str(r.sent),
                str(r.ok),
                errors,
                fmt_ms(r.p50_ms),
                fmt_ms(r.p95_ms),
                style=style,
            )
        console.print(table)
        if scoring is not None:
            from canary.cli.score import render_scoring

            render_scoring(scoring)
            if scoring.reference_note:
                console.print(f"[yellow]{scoring.reference_note}[/]", highlight=False)
        console.print(
            f"stored in run [bold]{stored.run_id}[/]; see `canary runs`, `canary show ID`"
        )
    if any(r.ok == 0 and r.sent > 0 for r in rows):
        raise typer.Exit(int(ExitCode.ENDPOINT))


def _notice_capped(fleet: FleetConfig, targets: Sequence[EndpointConfig], concurrency: int) -> None:
    """One line per endpoint whose own limit holds `--concurrency` down (on stderr: --json)."""
    for target in targets:
        limit = fleet.limits_for(target).concurrency
        if concurrency > limit:
            err_console.print(
                f"endpoint {target.name}: --concurrency {concurrency} capped at its "
                f"limits.concurrency {limit}; raise it in the fleet file",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
