"""`canary score`: (re-)score stored results with the registered detectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from canary.cli.options import (
    DbOption,
    JsonOption,
    RunOption,
    SelectOption,
    SinceOption,
    UntilOption,
    result_filter,
)
from canary.cli.output import console, print_json

if TYPE_CHECKING:
    from canary.scoring import ScoringReport


def score(
    run: RunOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    select: SelectOption = None,
    detector: Annotated[
        list[str] | None,
        typer.Option("--detector", "-d", help="Only this detector (repeatable); default all."),
    ] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Score stored results again, e.g. after adding or changing a detector.

    Scores are replaced per (result, detector, metric), so re-scoring is safe to repeat.
    """
    from canary.detectors import detectors
    from canary.scoring import score_stored
    from canary.store import open_store

    filt = result_filter(run, since, until, select)
    for name in detector or ():
        detectors.get(name)  # unknown names fail before any work, with "did you mean"
    store = open_store(db)
    store.mark_abandoned_runs()  # close runs whose process died; their results are scored too
    report = score_stored(store, filt, detectors=detector)
    if json:
        print_json(report.to_dict())
        return
    render_scoring(report)


def render_scoring(report: ScoringReport) -> None:
    """The per-metric table of a `ScoringReport`."""
    table = Table(title=f"scored {report.results} results in {report.seconds:.2f} s")
    for column in ("metric", "scored", "flagged", "rate"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric, n in sorted(report.scored.items()):
        bad = report.flagged.get(metric, 0)
        table.add_row(
            metric, str(n), str(bad), f"{bad / n:.1%}" if n else "-", style="red" if bad else ""
        )
    console.print(table)
