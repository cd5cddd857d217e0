"""`canary doctor`: check config, database, sinks, endpoints and daemon health; say what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from canary.cli.options import DEFAULT_FLEET, DbOption, JsonOption
from canary.cli.output import console, print_json
from canary.sanitize import one_line

_MARKS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[bold red]✗[/]"}


def doctor(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Daemon config: checks its fleet, suites and sinks too."
        ),
    ] = None,
    fleet: Annotated[
        Path | None,
        typer.Option(
            "--fleet",
            "-f",
            help="Fleet config, when there is no daemon config (default ./canary.yaml if present).",
            envvar="CANARY_FLEET",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds each network check may take.")
    ] = 5.0,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Check that canary can do its job, and say what to do about anything that is wrong.

    Checks the config files and every schedule's suite; the database (reachable, schema at
    head, a rolled-back write); the alert baseline; each sink's environment (nothing is
    sent); each endpoint, with one real one-token request; and, from the database, the
    daemon's health: schedules on time, orphaned slots, the outbox, open alerts. Secrets are
    never printed.

    Exit code 0 when nothing failed (warnings allowed); 3 when a config, suite, baseline or
    environment variable is wrong; 4 when the database or the daemon's stored health is; 5
    when an endpoint cannot be reached. When several fail, the earliest layer wins (3, then
    4, then 5): a later failure may only echo an earlier one.
    """
    from canary.doctor import exit_code, run_checks

    if config is None and fleet is None and DEFAULT_FLEET.exists():
        fleet = DEFAULT_FLEET
    checks = run_checks(config=config, fleet=fleet, db=db, timeout_s=timeout)
    code = exit_code(checks)
    if json:
        print_json({"checks": [c.to_dict() for c in checks], "exit_code": int(code)})
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            # Details quote servers and files: printed as plain text, never as rich markup.
            line = Text.from_markup(_MARKS[c.status])
            line.append(one_line(f" {c.name:<{width}}  {c.detail}"))
            console.print(line, highlight=False)
            if c.fix:
                fix = Text(one_line(f"  {'':<{width}}  → {c.fix}"), style="dim")
                console.print(fix, highlight=False)
        failed = sum(c.status == "fail" for c in checks)
        warned = sum(c.status == "warn" for c in checks)
        console.print(f"{len(checks)} checks: {failed} failed, {warned} warnings")
    if code:
        raise typer.Exit(int(code))
