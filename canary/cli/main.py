"""Entry point: assembles the command groups and maps errors to exit codes."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from canary import __version__
from canary.errors import CanaryError

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 regression found (compare) ; 2 inconclusive (compare); "
    "3 bad arguments or config; 4 database or stored-data problem; "
    "5 an endpoint answered no request in the round (run), or is unreachable (doctor)."
)


class CanaryGroup(TyperGroup):
    """Turns a `CanaryError` anywhere below into one red line and its exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click in newer versions
        try:
            return super().invoke(ctx)
        except CanaryError as exc:
            from canary.cli.output import err_console

            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(int(exc.exit_code)) from None


app = typer.Typer(
    cls=CanaryGroup,
    name="canary",
    help="Continuous quality canary for LLM serving fleets.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"canary {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Continuous quality canary for LLM serving fleets."""


def _register() -> None:
    from canary.cli import (
        alerts,
        baseline,
        change,
        cohorts,
        compare,
        daemon,
        db,
        demo,
        doctor,
        init,
        prune,
        replay,
        report,
        run,
        runs,
        score,
        sim,
    )

    app.command("init")(init.init)
    app.add_typer(db.app, name="db", help="Create, migrate and inspect the database schema.")
    app.command("run")(run.run)
    app.command("runs")(runs.list_runs)
    app.command("show")(runs.show)
    app.command("score")(score.score)
    app.command("prune")(prune.prune)
    app.command("daemon")(daemon.daemon)
    app.command("alerts")(alerts.alerts)
    app.command("report")(report.report)
    app.command("demo")(demo.demo)
    app.command("replay")(replay.replay)
    app.command("doctor")(doctor.doctor)
    app.command("cohorts")(cohorts.cohorts)
    app.command("compare")(compare.compare)
    app.add_typer(baseline.app, name="baseline", help="Capture, list, export and import baselines.")
    app.add_typer(change.app, name="change", help="Record and list deploys and config changes.")
    app.add_typer(sim.app, name="sim", help="The simulated serving fleet and its tiny model.")


_register()


def main() -> None:
    app()
