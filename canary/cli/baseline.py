"""`canary baseline capture|list|show|export|import`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from canary.cli.options import (
    DbOption,
    JsonOption,
    RunOption,
    SelectOption,
    SinceOption,
    SuitesOption,
    UntilOption,
    result_filter,
)
from canary.cli.output import console, print_json
from canary.sanitize import markup_safe, one_line

app = typer.Typer(no_args_is_help=True)


@app.command()
def capture(
    name: Annotated[str, typer.Argument(help="Name to store the baseline under.")],
    select: SelectOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    run: RunOption = None,
    suite: SuitesOption = None,
    by: Annotated[str, typer.Option("--by", help="Cohort labels, comma-separated.")] = "endpoint",
    note: Annotated[str | None, typer.Option("--note", help="Why this period is healthy.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a baseline of that name.")
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Summarise a healthy period per cohort × metric and store it as NAME.

    Choose the results with --run, or --since/--until, narrowed by --select label=value and
    --suite. `compare` takes the other side on the baseline's suites only, and refuses a
    baseline holding several suites unless --suite named them at capture (the daemon's alerts
    monitor against one of every suite).
    """
    from canary.compare.baselines import capture_baseline
    from canary.compare.suites import check_known
    from canary.errors import ConfigError
    from canary.store import open_store

    if not (run or since or until):
        raise ConfigError("say which results: --run ID, or --since/--until (with --select)")
    filt = result_filter(run, since, until, select, suite)
    store = open_store(db)
    for run_id in filt.run_ids:
        store.get_run(run_id)  # "no run with id N", not an empty baseline
    check_known(store, filt.suites)
    baseline = capture_baseline(
        store, name, filt, [b for b in by.split(",") if b], note=note, replace=force
    )
    summary = baseline.summary()
    if json:
        print_json(summary)
        return
    console.print(
        f"baseline [bold]{markup_safe(name, single_line=True)}[/]: {summary['results']} results, "
        f"{summary['cohorts']} cohorts, suites {markup_safe(', '.join(summary['suites']))}"
    )


@app.command("list")
def list_(db: DbOption = None, json: JsonOption = False) -> None:
    """List stored baselines."""
    from canary.compare import list_baselines
    from canary.store import open_store

    baselines = [b.summary() for b in list_baselines(open_store(db))]
    if json:
        print_json(baselines)
        return
    table = Table(title="baselines")
    for column in ("name", "created", "selector", "by", "cohorts", "results", "suites"):
        table.add_column(column)
    for b in baselines:
        table.add_row(
            Text(one_line(b["name"])),
            b["created_at"][:19],
            Text(one_line(b["selector"])),
            Text(one_line(",".join(b["by"]) or "-")),
            str(b["cohorts"]),
            str(b["results"]),
            Text(one_line(", ".join(b["suites"]))),
        )
    console.print(
        table if baselines else "no baselines; capture one with `canary baseline capture`"
    )


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Baseline name.")],
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Show a baseline's cohorts and metrics."""
    from canary.compare import load_baseline
    from canary.store import open_store

    baseline = load_baseline(open_store(db), name)
    if json:
        print_json(baseline.to_json())
        return
    table = Table(title=Text(one_line(f"baseline {name} ({baseline.selector})")))
    for column in ("cohort", "metric", "kind", "n", "value"):
        table.add_column(column)
    for key, cohort in sorted(baseline.aggregate.cohorts.items()):
        for metric, data in sorted(cohort.metrics.items()):
            table.add_row(
                Text(one_line(key)),
                Text(one_line(metric)),
                data.kind,
                str(data.n),
                Text(one_line(data.describe())),
            )
    console.print(table)


@app.command("export")
def export_(
    name: Annotated[str, typer.Argument(help="Baseline name.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default baselines/NAME.json)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Write a baseline as reviewable JSON."""
    from canary.compare import export_baseline
    from canary.store import open_store

    path = export_baseline(open_store(db), name, output or Path("baselines") / f"{name}.json")
    console.print(f"wrote {markup_safe(path)}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A file written by `canary baseline export`.")],
    name: Annotated[str | None, typer.Option("--name", help="Store under another name.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a baseline of that name.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Load a baseline export into the database."""
    from canary.compare import import_baseline
    from canary.store import open_store

    baseline = import_baseline(open_store(db), path, name=name, replace=force)
    console.print(f"imported baseline [bold]{markup_safe(baseline.name, single_line=True)}[/]")
