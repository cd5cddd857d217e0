"""`canary score`: (re-)score stored results with the registered detectors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from canary.cli.options import (
    DEFAULT_FLEET,
    DbOption,
    JsonOption,
    ReferenceOption,
    RunOption,
    SelectOption,
    SinceOption,
    UntilOption,
    result_filter,
)
from canary.cli.output import console, print_json

if TYPE_CHECKING:
    from canary.config import FleetConfig
    from canary.config.reference import ReferenceConfig
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
    fleet: Annotated[
        Path | None,
        typer.Option(
            "--fleet",
            "-f",
            help="Fleet file whose reference: and chat templates judge the results "
            "(default: ./canary.yaml when it exists).",
            envvar="CANARY_FLEET",
            show_default=False,
        ),
    ] = None,
    reference: ReferenceOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Score stored results again, e.g. after adding or changing a detector.

    Scores are replaced per (result, detector, metric), so re-scoring is safe to repeat.
    Reference-based checks use --reference, else $CANARY_REFERENCE_MODEL, else the fleet
    file's reference:; with none they are reported as not available.
    """
    from canary.detectors import detectors
    from canary.pipeline import endpoint_templates
    from canary.scoring import score_stored
    from canary.store import open_store

    filt = result_filter(run, since, until, select)
    for name in detector or ():
        detectors.get(name)  # unknown names fail before any work, with "did you mean"
    fleet_config = _fleet_with_reference(fleet, reference)
    store = open_store(db, config_url=fleet_config.database_url if fleet_config else None)
    store.mark_abandoned_runs()  # close runs whose process died; their results are scored too
    report = score_stored(
        store,
        filt,
        detectors=detector,
        reference=fleet_config.reference if fleet_config else _bare_reference(reference),
        chat_templates=endpoint_templates(fleet_config) if fleet_config else None,
    )
    if json:
        print_json(report.to_dict())
        return
    render_scoring(report)
    if report.reference_note:
        console.print(f"[yellow]{report.reference_note}[/]", highlight=False)


def _fleet_with_reference(path: Path | None, reference: str | None) -> FleetConfig | None:
    """The fleet file (given, or ./canary.yaml when present) with its reference resolved."""
    from canary.config import load_fleet
    from canary.config.judged import with_resolved_reference

    if path is None and not DEFAULT_FLEET.is_file():
        return None
    where = path or DEFAULT_FLEET
    return with_resolved_reference(load_fleet(where), reference, fleet_dir=where.resolve().parent)


def _bare_reference(reference: str | None) -> ReferenceConfig | None:
    """With no fleet file: --reference, else $CANARY_REFERENCE_MODEL, else none."""
    from canary.config.reference import resolve_reference

    return resolve_reference(reference)


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
