"""`canary replay SCENARIO`: replay an incident timeline on the simulated fleet and judge it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from canary.cli.options import DbOption, JsonOption
from canary.cli.output import console, print_json
from canary.sanitize import markup_safe, printable


def replay(
    scenario: Annotated[
        str,
        typer.Argument(
            help="A shipped scenario (postmortem, postmortem-short, demo, aa, two-faults, "
            "small-fault) or a scenario YAML file."
        ),
    ] = "postmortem",
    db: DbOption = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the results table as Markdown.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Replay SCENARIO: healthy baseline, then recorded changes switching real faults on and off
    in the simulated fleet, probed on the daemon's schedule; print detection delays against the
    theoretical minimum, attribution, resolution, false alerts and session impact.

    Exit 0 when every fault was detected and attributed to its change within 2× the minimum
    probes with no false alert, 1 otherwise. Uses a fresh SQLite file unless --db is given.
    """
    from canary.replay import analyse, load_scenario, run_scenario
    from canary.store import open_store

    loaded = load_scenario(scenario)
    url = db or f"sqlite:///{Path(tempfile.mkdtemp(prefix='canary-replay-')) / 'replay.db'}"
    store = open_store(url)
    quiet = json or markdown
    run = run_scenario(
        store,
        loaded,
        progress=(lambda _: None) if quiet else (lambda m: console.print(Text(printable(m)))),
    )
    report = analyse(store, run)
    if json:
        print_json({**report.to_dict(), "database_url": url})
    elif markdown:
        from canary.replay.render import render_markdown

        print(printable(render_markdown(report)))
    else:
        from canary.replay.render import render_report

        render_report(report, console)
        safe = markup_safe(url)
        console.print(f"stored in {safe}; see `canary alerts --all --db {safe}`")
    if not report.passed:
        raise typer.Exit(1)
