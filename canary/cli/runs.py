"""`canary runs` and `canary show`: what was stored, for humans and for `--json`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from canary.cli.options import DbOption, JsonOption
from canary.cli.output import console, fmt_ms, fmt_time, print_json
from canary.sanitize import one_line, printable


def _cell(value: object) -> Text:
    """A table cell from stored text: one line, control characters visible, never markup."""
    return Text(one_line(value))


def list_runs(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    suite: Annotated[str | None, typer.Option("--suite", help="Only runs of this suite.")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """List the most recent runs, newest first."""
    from canary.store import open_store

    store = open_store(db)
    store.mark_abandoned_runs()  # a run whose process died says so, instead of `running`
    runs = store.list_runs(limit, suite=suite)
    if json:
        print_json([r.to_dict() for r in runs])
        return
    table = Table(title="runs")
    for column in (
        "id",
        "started",
        "suite",
        "version",
        "load",
        "status",
        "results",
        "errors",
        "endpoints",
    ):
        table.add_column(column)
    for r in runs:
        table.add_row(
            str(r.id),
            fmt_time(r.started_at),
            _cell(r.suite),
            _cell(r.suite_version),
            _cell(r.load_shape),
            _cell(r.status),
            str(r.n_results),
            str(r.n_errors),
            _cell(", ".join(r.endpoints)),
            style="red" if r.status != "completed" else "",
        )
    console.print(table if runs else "no runs yet; start one with `canary run --suite smoke`")


def show(
    result_id: Annotated[
        int, typer.Argument(help="Result id (from `canary runs --json` or alerts).")
    ],
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Show one stored result: request, output, tokens, scores and cohort."""
    from canary.store import open_store

    result = open_store(db).get_result(result_id)
    if json:
        print_json(result.to_dict())
        return
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    # Every value below came from the store, so from an endpoint or a user: each is a Text
    # (never parsed as markup) of `one_line`/`printable` text (escapes visible, never emitted).
    facts.add_row("run", str(result.run_id))
    probe = f"{result.probe_id} ({result.probe_kind}) · {result.suite} v{result.suite_version}"
    facts.add_row("probe", _cell(probe))
    facts.add_row("endpoint", _cell(result.endpoint))
    facts.add_row("cohort", _cell(", ".join(f"{k}={v}" for k, v in sorted(result.labels.items()))))
    facts.add_row("session", _cell(f"{result.session_id} · repeat {result.repeat_index}"))
    facts.add_row("started", fmt_time(result.started_at))
    facts.add_row("latency", f"{fmt_ms(result.latency_ms)} · {result.attempts} attempt(s)")
    facts.add_row("status", str(result.status_code or "-"))
    if result.served_by:
        facts.add_row("served by", _cell(result.served_by))
    if result.error_kind:
        detail = f": {result.error_detail}" if result.error_detail else ""
        facts.add_row("error", Text(printable(f"{result.error_kind}{detail}"), style="red"))
    console.print(Panel(facts, title=f"result {result.id}", expand=False))
    if result.pruned_at is not None:
        console.print(
            f"[yellow]output pruned on {fmt_time(result.pruned_at)} UTC: "
            "retention keeps scores only[/]"
        )
    elif result.output_text is not None:
        # Model output is untrusted: plain Text, never rich markup, escape sequences visible.
        console.print(Panel(Text(printable(result.output_text)), title="output", expand=False))
    if result.tokens:
        tokens = Table(title="tokens (first 20)")
        for column in ("#", "token", "logprob", "top alternatives"):
            tokens.add_column(column)
        for index, token in enumerate(result.tokens[:20]):
            top = ", ".join(f"{t!r} {_lp(lp, 2)}" for t, lp in list(token.top.items())[:4])
            tokens.add_row(str(index), _cell(repr(token.token)), _lp(token.logprob, 3), _cell(top))
        console.print(tokens)
    if result.scores:
        scores = Table(title="scores")
        for column in ("detector", "metric", "value", "flagged"):
            scores.add_column(column)
        for s in result.scores:
            value = "-" if s.value is None else f"{s.value:.4g}"
            scores.add_row(
                _cell(f"{s.detector} {s.detector_version}"),
                _cell(s.metric),
                value,
                "[red]yes[/]" if s.flagged else "no",
            )
        console.print(scores)


def _lp(value: object, digits: int) -> str:
    """A logprob, or ``-`` where it is missing or not a number (a stored row may hold null)."""
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"
