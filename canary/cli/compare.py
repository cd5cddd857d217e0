"""`canary compare --before … --after …`: the deploy gate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from canary.cli.options import DbOption, JsonOption, ReferenceOption, SuitesOption, suite_list
from canary.cli.output import console as stdout_console
from canary.cli.output import print_json

if TYPE_CHECKING:
    from rich.console import Console

    from canary.compare import Comparison


def compare(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            help="Selector: baseline name, run:ID, "
            "SINCE..UNTIL, change:ID, or label=value[@SINCE..UNTIL].",
        ),
    ],
    after: Annotated[str, typer.Option("--after", help="Selector for the side under test.")],
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Cohort labels to compare per, comma-separated "
            "(default: endpoint; a baseline's own grouping).",
        ),
    ] = None,
    window: Annotated[
        str, typer.Option("--window", help="Window of change: and label selectors.")
    ] = "24h",
    alpha: Annotated[
        float,
        typer.Option("--alpha", min=1e-6, max=0.5, help="False-discovery rate across all tests."),
    ] = 0.05,
    power: Annotated[
        float,
        typer.Option("--power", min=0.5, max=0.99, help="Power for the minimum detectable effect."),
    ] = 0.8,
    show_all: Annotated[bool, typer.Option("--all", help="Show passing metrics too.")] = False,
    suite: SuitesOption = None,
    reference: ReferenceOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Compare two selections metric by metric and gate on the result.

    Exit 0 pass, 1 regression, 2 inconclusive (the data cannot rule out a regression of a
    critical metric), 3 bad arguments or a side mixing suites without --suite, 4 data not
    comparable (suite or detector versions differ, a baseline of another suite).
    """
    from canary.cli.reference_scope import compare_notes
    from canary.compare import run_compare
    from canary.store import open_store
    from canary.timespec import parse_duration

    store = open_store(db)
    # --reference re-judges the selected sides first; sides never judged get a note.
    notes = compare_notes(
        store, before, after, parse_duration(window), suite_list(suite), reference
    )
    comparison = run_compare(
        store,
        before,
        after,
        by=[b for b in by.split(",") if b] if by is not None else None,
        window=parse_duration(window),
        alpha=alpha,
        power=power,
        suites=suite_list(suite),
    )
    comparison.notes.extend(notes)
    if json:
        print_json(comparison.to_dict())
    else:
        render_comparison(comparison, show_all=show_all)
    raise typer.Exit(comparison.gate.exit_code)


def render_comparison(
    comparison: Comparison, *, show_all: bool = False, out: Console | None = None
) -> None:
    """The verdict table, evidence pointers, notes and the gate line of a `Comparison`, on
    ``out`` (default: stdout's console); see `canary.reports.comparison`."""
    from canary.reports.comparison import render_comparison as render

    render(comparison, out or stdout_console, show_all=show_all)
