"""The report for a terminal: rich tables, coloured statuses, sparklines, highlighted spans.

Every string that came from the store (labels, change notes, model output) is put in a rich
`Text`, never in markup, and control characters are made visible: model output can neither
inject rich markup nor terminal escape sequences.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from canary.reports.format import (
    POOL_COLUMNS,
    STATUS_STYLE,
    detail_lines,
    pct,
    pool_rows,
    signed_pct,
    sparkline,
    visible,
)
from canary.reports.model import Report

_MARK = {"regressed": "✗", "inconclusive": "?", "ok": "✓", "no data": "·"}
_ALERT_STYLE = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
_SPAN_STYLE = "bold white on red"


def render_terminal(report: Report, console: Console) -> None:
    """Print the whole report: grid, alerts, pools, impact, evidence, changes, notes."""
    window = f"{report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC"
    selection = ",".join(f"{k}={v}" for k, v in sorted(report.selection.items())) or "all"
    header = Text.assemble(
        ("canary report ", "bold"), window, "  selection ", (selection, "cyan"),
        "  reference ", (report.reference, "cyan"),
    )  # fmt: skip
    console.print(header)
    _grid(report, console)
    _alerts(report, console)
    _pools(report, console)
    _impact(report, console)
    _evidence(report, console)
    _changes(report, console)
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"))


def _grid(report: Report, console: Console) -> None:
    if not report.cells:
        console.print("no cohort has results in the window")
        return
    table = Table(title="cohort × metric: rate (vs reference) and per-round trend")
    table.add_column("cohort")
    for metric in report.metrics:
        table.add_column(metric, justify="left")
    for cohort in report.cohorts:
        row: list[Text] = [Text(cohort.key)]
        for metric in report.metrics:
            cell = report.cell(cohort.key, metric)
            if cell is None:
                row.append(Text("·", style="dim"))
                continue
            text = Text(f"{_MARK[cell.status]} {pct(cell.rate)}", style=STATUS_STYLE[cell.status])
            if cell.effect is not None:
                text.append(f" ({signed_pct(cell.effect)})")
            text.append("\n" + sparkline([p.rate for p in cell.trend]), style="cyan")
            row.append(text)
        table.add_row(*row)
    console.print(table)
    counts = {s: sum(c.status == s for c in report.cells) for s in STATUS_STYLE}
    console.print(
        Text("  ").join(
            Text(f"{_MARK[s]} {s}: {n}", style=STATUS_STYLE[s]) for s, n in counts.items()
        )
    )
    for cell in report.cells:
        if cell.status in ("regressed", "inconclusive"):
            console.print(
                Text.assemble(
                    (f"  {_MARK[cell.status]} ", STATUS_STYLE[cell.status]),
                    f"{cell.cohort} / {cell.metric}: {cell.reason}",
                )
            )


def _alerts(report: Report, console: Console) -> None:
    if not report.alerts:
        console.print(Text("no alerts in the window", style="green"))
        return
    by_id = {a.id: a for a in report.alerts}
    console.print(Text(f"{len(report.alerts)} alert(s), grouped as paged", style="bold"))
    for group in report.alert_groups:
        if group.change is not None:
            c = group.change
            labels = ",".join(f"{k}={v}" for k, v in sorted(c.labels.items())) or "whole fleet"
            title = Text(f"change {c.change_id} ({c.kind}, {labels}, {c.at:%Y-%m-%d %H:%M:%S})")
            if c.note:
                title.append(f": {c.note}", style="italic")
        else:
            title = Text("no attributed change")
        table = Table(title=title, title_justify="left")
        for column in ("id", "status", "metric", "cohort", "rate", "baseline", "sessions", "fired"):
            table.add_column(column, justify="right" if column in ("id", "rate") else "left")
        for alert_id in group.alert_ids:
            a = by_id[alert_id]
            sessions = pct(a.impact["session_rate"]) if a.impact else "-"
            fired = f"{a.fired_at:%H:%M:%S}" if a.fired_at else "-"
            table.add_row(
                str(a.id),
                Text(a.status, style=_ALERT_STYLE.get(a.status, "")),
                Text(a.metric),
                Text(a.cohort),
                f"{a.rate:.1%} ({a.k}/{a.n})",
                f"≤ {a.baseline_rate:.1%}",
                sessions,
                fired,
            )
        console.print(table)


def _pools(report: Report, console: Console) -> None:
    rows = pool_rows(report.pools)
    if not rows:
        return
    table = Table(title="each pool against the rest of the fleet (Holm-adjusted)")
    for column in POOL_COLUMNS:
        table.add_column(column, justify="left" if column in ("pool", "metric") else "right")
    for p, cells in rows:
        table.add_row(Text(cells[0]), *cells[1:], style="bold red" if p.different else "")
    console.print(table)


def _impact(report: Report, console: Console) -> None:
    if not report.impact:
        return
    table = Table(title="impact of the regressed metrics: requests vs sessions")
    for column in ("metric", "cohort", "requests flagged", "sessions flagged"):
        table.add_column(column, justify="left" if column in ("metric", "cohort") else "right")
    for row in report.impact:
        i = row.impact
        table.add_row(
            row.metric,
            Text(row.cohort),
            f"{i.request_rate:.1%} ({i.flagged_requests}/{i.requests})",
            f"{i.session_rate:.1%} ({i.flagged_sessions}/{i.sessions})",
        )
    console.print(table)


def _evidence(report: Report, console: Console) -> None:
    for s in report.evidence:
        body = Text(visible(s.text))
        for span in s.spans:
            body.stylize(_SPAN_STYLE, span.start, span.end)
        lines: list[Text] = [body]
        for span in s.spans:
            located = visible(s.text[span.start : span.end])
            note = visible(f"↳ [{span.start}:{span.end}] {located!r}: {span.note}")
            lines.append(Text(note, "yellow"))
        lines += [Text(line, style="dim") for line in detail_lines(s.metric, s.detail)]
        title = Text(f"{s.metric} · {s.cohort} · probe {s.probe_id} · result {s.result_id}")
        subtitle = f"canary show {s.result_id}" + (
            f" · from {s.source}" if s.source != "evidence" else ""
        )
        console.print(Panel(Group(*lines), title=title, subtitle=subtitle, title_align="left"))


def _changes(report: Report, console: Console) -> None:
    if not report.changes:
        return
    console.print(Text("changes in the window", style="bold"))
    for c in report.changes:
        labels = ",".join(f"{k}={v}" for k, v in sorted(c.labels.items())) or "whole fleet"
        console.print(
            Text(f"  {c.at:%Y-%m-%d %H:%M:%S}  {c.change_id}  {c.kind}  {labels}  {c.note}")
        )
