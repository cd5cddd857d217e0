"""`canary change record|list`: tell canary about deploys, config and load-balancer changes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from canary.cli.options import DbOption, JsonOption, SelectOption
from canary.cli.output import console, print_json

app = typer.Typer(no_args_is_help=True)


@app.command()
def record(
    change_id: Annotated[str, typer.Option("--id", help="Your id for the change (deploy id).")],
    kind: Annotated[str, typer.Option("--kind", help="deploy, config, lb or model.")],
    select: SelectOption = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="When it took effect (ISO time or '10m' ago); default now."),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="What changed.")] = "",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Record a change touching the cohorts that match --select (all cohorts when none)."""
    from datetime import UTC, datetime

    from canary.config.selection import parse_label_filters
    from canary.store import open_store
    from canary.store.changes import record_change
    from canary.timespec import parse_time

    when = parse_time(at) if at else datetime.now(UTC)
    change = record_change(
        open_store(db), change_id, kind, parse_label_filters(select or ()), when, note
    )
    if json:
        print_json(change.to_dict())
    else:
        console.print(
            f"recorded {change.kind} [bold]{change.change_id}[/] at "
            f"{change.at.isoformat(timespec='seconds')}"
        )


@app.command("list")
def list_(
    since: Annotated[
        str | None, typer.Option("--since", help="Only changes since (24h, ISO).")
    ] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """List recorded changes, oldest first."""
    from canary.store import open_store
    from canary.store.changes import list_changes
    from canary.timespec import parse_time

    changes = list_changes(open_store(db), since=parse_time(since) if since else None)
    if json:
        print_json([c.to_dict() for c in changes])
        return
    table = Table(title="changes")
    for column in ("at", "id", "kind", "cohorts", "note"):
        table.add_column(column)
    for c in changes:
        table.add_row(
            c.at.isoformat(timespec="seconds"),
            c.change_id,
            c.kind,
            ",".join(f"{k}={v}" for k, v in c.labels.items()) or "all",
            c.note,
        )
    console.print(table if changes else "no changes recorded")
