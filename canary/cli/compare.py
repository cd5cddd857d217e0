"""`canary compare --before … --after …`: the deploy gate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from canary.cli.options import DbOption, JsonOption
from canary.cli.output import console, print_json
from canary.sanitize import markup_safe, one_line

if TYPE_CHECKING:
    from canary.compare import Comparison

_VERDICT_STYLE = {
    "regression": "bold red",
    "inconclusive": "yellow",
    "improvement": "green",
    "pass": "",
    "no_data": "dim",
}


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
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Compare two selections metric by metric and gate on the result.

    Exit 0 pass, 1 regression, 2 inconclusive (the data cannot rule out a regression of a
    critical metric), 3 bad arguments, 4 data not comparable (suite or detector versions differ).
    """
    from canary.compare import run_compare
    from canary.store import open_store
    from canary.timespec import parse_duration

    comparison = run_compare(
        open_store(db),
        before,
        after,
        by=[b for b in by.split(",") if b] if by is not None else None,
        window=parse_duration(window),
        alpha=alpha,
        power=power,
    )
    if json:
        print_json(comparison.to_dict())
    else:
        render_comparison(comparison, show_all=show_all)
    raise typer.Exit(comparison.gate.exit_code)


def render_comparison(comparison: Comparison, *, show_all: bool = False) -> None:
    """The verdict table, evidence pointers, notes and the gate line of a `Comparison`."""
    from canary.reports.format import num

    # Selectors, cohort labels and notes were typed by users or sent by endpoints: they go in
    # as Text or through markup_safe, never as markup.
    table = Table(title=Text(one_line(f"{comparison.before}  →  {comparison.after}")))
    for column in (
        "cohort",
        "metric",
        "verdict",
        "before",
        "after",
        "effect [CI]",
        "p",
        "q",
        "MDE",
        "n before/after",
    ):
        table.add_column(
            column, justify="left" if column in ("cohort", "metric", "verdict") else "right"
        )
    shown = 0
    for v in comparison.verdicts:
        if v.verdict == "pass" and not show_all:
            continue
        shown += 1
        r = v.result
        table.add_row(
            Text(one_line(v.cohort)),
            Text(one_line(v.metric + (" *" if v.critical else ""))),
            v.verdict,
            num(r.estimate_before),
            num(r.estimate_after),
            f"{num(r.effect)} [{num(r.ci_low)}, {num(r.ci_high)}]",
            num(r.p_value),
            num(v.q_value),
            num(r.mde),
            f"{r.n_before}/{r.n_after}",
            style=_VERDICT_STYLE.get(v.verdict, ""),
        )
    passed = sum(v.verdict == "pass" for v in comparison.verdicts)
    if shown:
        console.print(table)
    console.print(f"{len(comparison.verdicts)} tests, {passed} pass (* = critical metric)")
    for key, ids in comparison.evidence.items():
        if ids:
            console.print(
                f"evidence for {markup_safe(key, single_line=True)}: "
                + ", ".join(f"canary show {i}" for i in ids[:3])
                + (f" (+{len(ids) - 3})" if len(ids) > 3 else "")
            )
    for note in comparison.notes:
        console.print(f"[dim]note: {markup_safe(note)}[/]")
    gate = comparison.gate
    colour = {"pass": "green", "regression": "red", "inconclusive": "yellow"}[gate.status]
    console.print(f"gate: [bold {colour}]{gate.status.upper()}[/] (exit {gate.exit_code})")
