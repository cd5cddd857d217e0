"""`canary prune`: apply retention to the store (raw outputs go, scores stay)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from canary.cli.options import DbOption, JsonOption
from canary.cli.output import console, fmt_time, print_json

if TYPE_CHECKING:
    from canary.store.retention import PruneReport


def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Remove the raw output of results older than this: 30d, 2w."
        ),
    ] = "30d",
    drop_results_after: Annotated[
        str | None,
        typer.Option(
            "--drop-results-after",
            help="Also delete whole results (and scores) older than this: 400d. Rollups and "
            "alert evidence are kept; PostgreSQL drops whole months.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would change; write nothing.")
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Remove old raw outputs (text, tokens, headers), keeping results, requests and scores.

    Results cited as alert evidence keep their output. Finished schedule slots and delivered
    notifications older than 90 days are deleted. Safe to repeat; each batch is committed alone.
    """
    from canary.store import open_store
    from canary.store.retention import RetentionPolicy
    from canary.store.retention import prune as prune_store

    policy = RetentionPolicy.older_than(older_than)
    if drop_results_after is not None:
        rows = RetentionPolicy.older_than(drop_results_after, option="--drop-results-after")
        policy = policy.model_copy(update={"result_days": rows.raw_output_days})
    report = prune_store(open_store(db), policy, dry_run=dry_run)
    if json:
        print_json(report.to_dict())
        return
    render_prune(report)


def render_prune(report: PruneReport) -> None:
    """The counts of a `PruneReport`, as a table."""
    verb = "would change (dry run)" if report.dry_run else "changed"
    table = Table(title=f"retention {verb}")
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_column("before")
    output = fmt_time(report.output_cutoff)
    bookkeeping = fmt_time(report.bookkeeping_cutoff)
    table.add_row("result outputs pruned", str(report.results_pruned), output)
    table.add_row("kept as alert evidence", str(report.results_kept_as_evidence), output)
    if report.results_cutoff is not None:
        cutoff = fmt_time(report.results_cutoff)
        table.add_row("results deleted", str(report.results_dropped), cutoff)
    table.add_row("schedule slots deleted", str(report.slots_deleted), bookkeeping)
    table.add_row("notifications deleted", str(report.notifications_deleted), bookkeeping)
    console.print(table)
