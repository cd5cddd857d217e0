"""Entry point: assembles the command groups and maps every outcome to a documented exit code.

A CI gate reads the exit code, so no failure may borrow a verdict's code: a `CanaryError` exits
with its own code (3 config, 4 database, ...), click's usage errors exit 3 (click says 2, which
is "inconclusive"), Ctrl-C exits 130, and an unexpected exception is a canary bug: one line
and exit 70, the traceback only with `--debug` (or `CANARY_DEBUG=1`).
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from canary import __version__
from canary.cli.logs import configure_logging
from canary.errors import CanaryError, ExitCode, StoreError

try:  # typer vendors click from 0.2x on; older versions use click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 regression found (compare) ; 2 inconclusive (compare); "
    "3 bad arguments or config; 4 database or stored-data problem; "
    "5 an endpoint answered no request in the round (run), or is unreachable (doctor); "
    "70 unexpected error, a canary bug (--debug shows the traceback); 130 interrupted; "
    "141 output pipe closed."
)
#: Set to 1 to print the traceback of an unexpected error, like `--debug`.
DEBUG_ENV = "CANARY_DEBUG"
_DEBUG_KEY = "canary.debug"


class CanaryGroup(TyperGroup):
    """Turns every failure below into one red line and its documented exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:  # an unknown option or command of the root itself
            _neutralise(exc)
            raise

    def invoke(self, ctx: Any) -> Any:  # typer vendors click in newer versions
        try:
            return super().invoke(ctx)
        except CanaryError as exc:
            _fail(str(exc), exc.exit_code)
        except ClickException as exc:  # usage errors exit 2 ("inconclusive"), others 1
            _neutralise(exc)
            raise
        except typer.Exit:
            raise
        except (KeyboardInterrupt, typer.Abort):  # click's Abort would exit 1, "regression"
            _fail("interrupted; what was stored so far is kept", ExitCode.INTERRUPTED)
        except BrokenPipeError:
            _quiet_broken_pipe()
        except Exception as exc:
            mapped = _database_failure(exc)
            if mapped is not None:
                _fail(str(mapped), mapped.exit_code)
            _report_bug(exc, debug=bool(ctx.meta.get(_DEBUG_KEY)) or _debug_env())


def _neutralise(exc: ClickException) -> None:
    """Exit 3, and a message that quotes the user's argument without acting on the terminal."""
    from canary.sanitize import one_line

    exc.exit_code = int(ExitCode.USAGE)
    exc.message = one_line(exc.message)


def _fail(message: str, code: ExitCode) -> NoReturn:
    from canary.cli.output import err_console
    from canary.sanitize import markup_safe

    # The message may quote user input or endpoint text: never let it act as markup or escapes.
    text = markup_safe(message, single_line=True)
    err_console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True, emoji=False)
    raise typer.Exit(int(code)) from None


def _database_failure(exc: Exception) -> StoreError | None:
    """A driver's operational error (locked, disk full, connection lost) as a database problem."""
    sa_exc = sys.modules.get("sqlalchemy.exc")  # never imported here just to check
    if sa_exc is None or not isinstance(exc, sa_exc.OperationalError):
        return None
    orig = exc.orig if exc.orig is not None else exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return StoreError(f"database error: {first}; check the database server, its disk and --db")


def _report_bug(exc: BaseException, *, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    detail = (str(exc).strip().splitlines() or [""])[0][:300]
    if debug:
        where = "the traceback is above; please report it"
    else:
        where = "rerun as `canary --debug COMMAND …` for the traceback"
    _fail(
        f"unexpected {type(exc).__name__}: {detail}; this is a canary bug — {where}",
        ExitCode.INTERNAL,
    )


def _quiet_broken_pipe() -> NoReturn:
    # The reader (`| head`) left: nothing more to say, and exit 1 would read as "regression".
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (CliRunner, a closed stream)
        pass
    raise typer.Exit(int(ExitCode.BROKEN_PIPE)) from None


def _debug_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


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
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar=DEBUG_ENV,
        help="On an unexpected error, print the traceback (for a bug report).",
    ),
) -> None:
    """Continuous quality canary for LLM serving fleets."""
    ctx.meta[_DEBUG_KEY] = debug
    configure_logging()


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
        detect,
        doctor,
        gate,
        identity,
        init,
        prune,
        replay,
        report,
        run,
        runs,
        score,
        sim,
        suite,
    )

    app.command("init")(init.init)
    app.add_typer(db.app, name="db", help="Create, migrate and inspect the database schema.")
    app.command("run")(run.run)
    app.command("runs")(runs.list_runs)
    app.command("show")(runs.show)
    app.command("score")(score.score)
    app.command("detect")(detect.detect)
    app.command("prune")(prune.prune)
    app.command("daemon")(daemon.daemon)
    app.command("alerts")(alerts.alerts)
    app.command("report")(report.report)
    app.command("demo")(demo.demo)
    app.command("replay")(replay.replay)
    app.command("doctor")(doctor.doctor)
    app.command("cohorts")(cohorts.cohorts)
    app.command("compare")(compare.compare)
    app.command("gate")(gate.gate)
    app.add_typer(baseline.app, name="baseline", help="Capture, list, export and import baselines.")
    app.add_typer(change.app, name="change", help="Record and list deploys and config changes.")
    app.add_typer(sim.app, name="sim", help="The simulated serving fleet and its tiny model.")
    app.command("identity")(identity.identity)
    app.add_typer(suite.app, name="suite", help="Generate probe suites from the reference model.")


_register()


def main() -> None:
    app()
