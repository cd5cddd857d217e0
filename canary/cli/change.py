"""`canary change record|list|ingest`: tell canary about deploys, config and LB changes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from canary.cli.options import DbOption, JsonOption, SelectOption, SinceOption, optional_time
from canary.cli.output import console, print_json
from canary.sanitize import markup_safe, one_line

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
    """Record a change touching the cohorts that match --select (all cohorts when none).

    Recording an id again with the same kind, cohorts, time and note is a harmless retry.
    """
    from canary.store import open_store
    from canary.store.changes import change_from_mapping, record_changes

    given = {"id": change_id, "kind": kind, "select": select or [], "at": at, "note": note}
    spec = change_from_mapping(given, source="canary change record")
    (recorded,) = record_changes(open_store(db), [spec])
    change = recorded.change
    if json:
        print_json(change.to_dict())
    else:
        verb = "recorded" if recorded.created else "already recorded (identical)"
        console.print(
            f"{verb} {markup_safe(change.kind, single_line=True)} "
            f"[bold]{markup_safe(change.change_id, single_line=True)}[/] at "
            f"{change.at.isoformat(timespec='seconds')}"
        )


@app.command("list")
def list_(
    since: SinceOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """List recorded changes, oldest first."""
    from canary.store import open_store
    from canary.store.changes import list_changes

    changes = list_changes(open_store(db), since=optional_time(since))
    if json:
        print_json([c.to_dict() for c in changes])
        return
    table = Table(title="changes")
    for column in ("at", "id", "kind", "cohorts", "note"):
        table.add_column(column)
    for c in changes:
        # Ids, notes and labels are typed by users and posted by deploy tools: Text, one line.
        table.add_row(
            c.at.isoformat(timespec="seconds"),
            Text(one_line(c.change_id)),
            Text(one_line(c.kind)),
            Text(one_line(",".join(f"{k}={v}" for k, v in c.labels.items()) or "all")),
            Text(one_line(c.note)),
        )
    console.print(table if changes else "no changes recorded")


@app.command()
def ingest(
    directory: Annotated[
        Path, typer.Argument(help="Drop directory with *.json / *.yaml change files.")
    ],
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Record the change files in DIRECTORY once, as the daemon does on each poll.

    Stored files move to DIRECTORY/processed; bad ones to DIRECTORY/failed with NAME.error.
    Exits 3 when any file failed.
    """
    from canary.daemon.dropdir import ingest_change_files
    from canary.errors import ExitCode
    from canary.store import open_store

    outcomes = ingest_change_files(open_store(db), directory)
    if json:
        print_json([o.to_dict() for o in outcomes])
    elif not outcomes:
        console.print(Text(f"no change files in {one_line(directory)}"))
    else:
        table = Table(title=Text(f"change files in {one_line(directory)}"))
        for column in ("file", "status", "changes or reason"):
            table.add_column(column)
        for o in outcomes:
            ids = ", ".join(r.change.change_id for r in o.changes)
            table.add_row(Text(one_line(o.name)), o.status, Text(one_line(o.error or ids)))
        console.print(table)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(int(ExitCode.USAGE))
