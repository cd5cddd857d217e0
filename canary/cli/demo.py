"""`canary demo`: one command from a fresh install to an alert on a faulty pool, with a report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from canary.cli.options import JsonOption
from canary.cli.output import console, print_json
from canary.sanitize import markup_safe

if TYPE_CHECKING:
    from canary.demo import DemoResult


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to keep the demo database (default: a temp dir)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer healthy rounds (CI); the same steps.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Simulated fleet → healthy baseline → recorded deploy → fault in one pool → alert → report.

    Runs in-process on 2 CPU cores in a few minutes. Exit 0 when the canary alerted on the
    faulty pool and attributed the alert to the deploy, 1 when it did not.
    """
    from canary.demo import run_demo

    def progress(message: str) -> None:
        if not json:
            console.print(f"[dim]•[/] {markup_safe(message)}")

    result = run_demo(directory, healthy_rounds=2 if quick else None, progress=progress)
    if json:
        print_json(
            {
                "detected": result.detected,
                "database_url": result.database_url,
                "healthy_rounds": result.healthy_rounds,
                "fault_rounds": result.fault_rounds,
                "alerts": [a.to_dict() for a in result.alerts],
            }
        )
    else:
        _render(result)
    if not result.detected:
        raise typer.Exit(1)


def _render(result: DemoResult) -> None:
    from canary.demo import DEMO_CHANGE, FAULTY_POOL
    from canary.reports import build_report, render_terminal
    from canary.store import open_store

    render_terminal(build_report(open_store(result.database_url)), console)
    if result.detected:
        console.print(
            f"[bold green]detected:[/] pool {FAULTY_POOL} alerted {result.fault_rounds} round(s) "
            f"after {DEMO_CHANGE}, attributed to it."
        )
    else:
        console.print(f"[bold red]not detected[/] after {result.fault_rounds} rounds")
    db = markup_safe(result.database_url)
    console.print(f"explore: canary alerts --db {db}; canary report --db {db} --html report.html")
