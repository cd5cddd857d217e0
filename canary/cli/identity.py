"""`canary identity`: is endpoint X serving the reference model (or the one a baseline saw)?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from canary.cli.options import DEFAULT_FLEET, DbOption, FleetOption, JsonOption, ReferenceOption
from canary.cli.output import console, print_json

if TYPE_CHECKING:
    from canary.identity import IdentityReport


def identity(
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="The endpoint to check.")],
    against: Annotated[
        str,
        typer.Option(
            "--against",
            help="The trusted side: reference (the fleet's reference:), baseline:NAME, "
            "run:ID (stored identity results) or endpoint:NAME (sent the same probes).",
        ),
    ] = "reference",
    budget: Annotated[
        int, typer.Option("--budget", min=3, max=180, help="Prompts to ask (KL, MMD, RUT).")
    ] = 40,
    samples: Annotated[
        int, typer.Option("--samples", min=2, max=200, help="Sampled completions per prompt.")
    ] = 10,
    alpha: Annotated[
        float, typer.Option("--alpha", min=1e-6, max=0.5, help="Error rate of the verdict.")
    ] = 0.05,
    border: Annotated[
        Path | None,
        typer.Option("--border", help="Border suite (default: the shipped probes/border.yaml)."),
    ] = None,
    stored: Annotated[
        str | None,
        typer.Option(
            "--stored",
            help="Decide from stored results since this time (24h, 7d or ISO): the "
            "model_equality scores of greedy topk/routing probes the canary already sent. "
            "Sends nothing; only --against reference.",
        ),
    ] = None,
    fleet: FleetOption = DEFAULT_FLEET,
    sim: Annotated[
        bool, typer.Option("--sim", help="Check the embedded simulated fleet (ignores --fleet).")
    ] = False,
    reference: ReferenceOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Send a small identity suite to ENDPOINT through the runner (everything is stored) and
    decide whether it serves the trusted model: KL on top-k logprobs with a margin, MET's
    Hamming MMD, the rank-uniformity test, border inputs and first-token logprob tracking.
    With --stored, send nothing: decide from the model_equality scores already stored.

    Exit 0 same, 1 different, 2 inconclusive, 3 bad arguments or config, 4 database problems.
    """
    from canary.cli.fleet_setup import probing_setup
    from canary.identity import check_identity
    from canary.identity._setup import border_inputs, trusted_side

    if stored is not None:
        _from_stored(endpoint, against, stored, alpha, fleet, sim, db, json)

    # An unknown endpoint name is a config error before any work (the selection checks it).
    with probing_setup(fleet, sim=sim, reference=reference, endpoints=[endpoint], db=db) as setup:
        fleet_config, store = setup.fleet, setup.store
        resolved, model = trusted_side(fleet_config, against)
        notes: list[str] = []
        report = check_identity(
            store,
            fleet_config,
            endpoint,
            against=resolved,
            model=model,
            budget=budget,
            samples=samples,
            alpha=alpha,
            border=border_inputs(border, model, notes) if resolved == "reference" else None,
        )
    report.notes[:0] = notes
    if json:
        print_json(report.to_dict())
    else:
        render(report)
    raise typer.Exit(report.exit_code)


def _from_stored(
    endpoint: str,
    against: str,
    since: str,
    alpha: float,
    fleet: Path,
    sim: bool,
    db: str | None,
    json: bool,
) -> None:
    from canary.config import load_fleet
    from canary.config.selection import select_endpoints
    from canary.errors import ConfigError
    from canary.identity import check_stored
    from canary.store import open_store
    from canary.timespec import parse_time

    if against != "reference":
        raise ConfigError(
            f"--stored decides against the reference the scores were made with, not "
            f"{against!r}; drop --against or --stored"
        )
    start = parse_time(since)
    url = None
    if not sim:  # the fleet file names the endpoint and may name the database
        config = load_fleet(fleet)
        select_endpoints(config, (endpoint,), ())
        url = config.database_url
    store = open_store(db, config_url=url)
    try:
        report = check_stored(store, endpoint, start, alpha=alpha)
    finally:
        store.close()
    if json:
        print_json(report.to_dict())
    else:
        render(report)
    raise typer.Exit(report.exit_code)


def render(report: IdentityReport) -> None:
    """The tests with their p-values and effects, the evidence, then the verdict line."""
    from rich.table import Table

    from canary.sanitize import markup_safe

    table = Table(title=f"{report.endpoint} against {report.against}")
    for column in ("test", "p (different)", "p (same)", "samples", "effects"):
        table.add_column(column)
    for t in report.tests:
        effects = ", ".join(f"{k} {v:.4g}" for k, v in t.effects.items())
        same = "-" if t.p_same is None else f"{t.p_same:.3g}"
        table.add_row(t.name, f"{t.p_value:.3g}", same, str(t.samples), effects)
    console.print(table)
    for e in report.evidence[:8]:
        where = e.probe_id + (f" @{e.position}" if e.position is not None else "")
        console.print(
            f"  {e.test} {markup_safe(where)}: {e.score:.4g}  endpoint "
            f"{markup_safe(repr(e.endpoint), single_line=True)} vs "
            f"{markup_safe(repr(e.trusted), single_line=True)}",
            highlight=False,
        )
    for note in report.notes:
        console.print(f"[dim]note: {markup_safe(note, single_line=True)}[/]", highlight=False)
    console.print(
        f"identity: [bold]{report.verdict}[/] (each test at level {report.level:.3g}; "
        + (f"stored in run {report.run_id})" if report.run_id is not None else "sent nothing)"),
        highlight=False,
    )
