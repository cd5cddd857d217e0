"""`canary report`: what on-call needs to know about a window, in a terminal, JSON or HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from canary.cli.options import (
    DEFAULT_WINDOW,
    DbOption,
    JsonOption,
    SelectOption,
    SinceOption,
    SuitesOption,
    suite_list,
)
from canary.cli.output import console, err_console, print_json
from canary.sanitize import markup_safe


def report(
    since: SinceOption = DEFAULT_WINDOW,
    select: SelectOption = None,
    suite: SuitesOption = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Cohort labels of the rows, comma-separated (default: endpoint,load, what the "
            "daemon monitors per; never the baseline's grouping).",
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Baseline to test the window against (default: the one the alerts use, "
            "else the newest stored, else the window just before).",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write the report as one self-contained HTML file here instead of printing it.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Report a window: cohort × metric statuses with trends, open alerts by change, pools
    against the fleet, session impact, and the worst evidence with its offending span.

    Exit 0 whenever the report was produced, regressions or not: the report informs, and the
    gate that fails a pipeline is `canary compare`. Exit 3 for bad arguments, 4 for database
    problems.
    """
    from canary.cli.reference_scope import missing_reference_notes
    from canary.config.selection import parse_label_filters
    from canary.records import ResultFilter
    from canary.reports import build_report
    from canary.store import open_store
    from canary.timespec import parse_time

    store = open_store(db)
    window = ResultFilter(
        labels=parse_label_filters(select or []),
        suites=suite_list(suite),
        since=parse_time(since or DEFAULT_WINDOW),
    )
    built = build_report(
        store,
        window,
        baseline=baseline,
        by=[b.strip() for b in by.split(",") if b.strip()] if by is not None else None,
    )
    built.notes.extend(missing_reference_notes(store, [window]))
    if html is not None:
        from canary.reports.html import render_html

        html.write_text(render_html(built), encoding="utf-8")
        # With --json, stdout carries only the JSON; otherwise this line is all that is printed.
        (err_console if json else console).print(
            f"wrote {markup_safe(html)}", highlight=False, soft_wrap=True
        )
    if json:
        print_json(built.to_dict())
        return
    if html is not None:
        return
    from canary.reports.terminal import render_terminal

    render_terminal(built, console)
