"""`canary gate`: probe the selected endpoints round after round until the deploy is decided."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from canary.cli.options import DEFAULT_FLEET, DbOption, FleetOption, JsonOption, SelectOption
from canary.cli.output import console, err_console, print_json

if TYPE_CHECKING:
    from canary.compare.sequential_gate import GateDecision


def gate(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            help="Selector of the side to beat: baseline name, run:ID, SINCE..UNTIL, change:ID "
            "or label=value[@SINCE..UNTIL].",
        ),
    ],
    suite: Annotated[str, typer.Option("--suite", help="Suite to send each round.")],
    fleet: FleetOption = DEFAULT_FLEET,
    select: SelectOption = None,
    max_probes: Annotated[
        int, typer.Option("--max-probes", min=1, help="Budget: results per cohort.")
    ] = 4000,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", min=0.01, help="Budget: wall-clock minutes.")
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", min=1e-6, max=0.5, help="False-decision rate.")
    ] = 0.05,
    sim: Annotated[
        bool, typer.Option("--sim", help="Probe the embedded simulated fleet (ignores --fleet).")
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Send SUITE to the selected endpoints round after round, storing everything, and stop as
    soon as every critical metric (marked *) is decided by an anytime-valid test, or at the
    budget. A regression of any metric fails the gate; the others do not hold it.

    Exit 0 pass, 1 regression, 2 inconclusive (budget spent with a critical metric undecided,
    or a critical metric without before data), 3 bad arguments, 4 database problems or a
    --before that selects nothing.
    """
    from canary.cli.fleet_setup import probing_setup
    from canary.compare.sequential_run import gate_rounds
    from canary.pipeline import run_and_judge
    from canary.probes import load_suite
    from canary.stats import DEFAULT_POLICIES

    loaded_suite = load_suite(suite)
    with probing_setup(fleet, sim=sim, select=select or (), db=db) as setup:
        fleet_config, targets, store = setup.fleet, setup.targets, setup.store

        def run_round() -> int:
            judged = run_and_judge(store, fleet_config, loaded_suite, targets, trigger="gate")
            return judged.stored.run_id

        def progress(rounds: int, now: GateDecision) -> None:
            if not json:
                open_ = sum(v.verdict == "inconclusive" for v in now.verdicts)
                err_console.print(
                    f"round {rounds}: {now.probes} probes/cohort, {open_} metrics undecided"
                )

        decision, notes = gate_rounds(
            store,
            before,
            run_round,
            DEFAULT_POLICIES,
            alpha=alpha,
            max_probes=max_probes,
            max_seconds=max_minutes * 60 if max_minutes is not None else None,
            suite=loaded_suite.name,
            on_round=progress,
        )
    if json:
        print_json({**decision.to_dict(), "notes": notes})
    else:
        render(decision, notes)
    raise typer.Exit(decision.exit_code)


def render(decision: GateDecision, notes: list[str]) -> None:
    """The verdicts that matter, then one line with the status, probes and time to decision."""
    from rich.table import Table

    shown = [v for v in decision.verdicts if v.verdict != "pass"]
    if shown:
        table = Table(title="undecided and failing metrics")
        for column in ("cohort", "metric", "verdict", "effect", "margin", "test", "e (reg/pass)"):
            table.add_column(column)
        for v in shown:
            table.add_row(
                v.cohort,
                v.metric + (" *" if v.critical else ""),
                v.verdict,
                f"{0.0 if abs(v.effect) < 1e-12 else v.effect:+.4g}",
                f"{v.margin:.4g}",
                v.method,
                f"{v.e_regression:.3g} / {v.e_pass:.3g}",
            )
        console.print(table)
    for note in notes:
        console.print(f"[dim]note: {note}[/]")
    passed = sum(v.verdict == "pass" for v in decision.verdicts)
    console.print(
        f"gate: {decision.status} ({decision.stop}) after {decision.probes} probes/cohort in "
        f"{decision.rounds} rounds, {decision.seconds:.1f} s; {passed}/{len(decision.verdicts)} "
        "metrics passed"
    )
