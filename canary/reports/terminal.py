"""The report for a terminal: rich tables, coloured statuses, sparklines, highlighted spans.

Every string that came from the store (labels, change ids and notes, probe ids, model output)
passes `canary.sanitize.printable` (or `one_line`) and is put in a rich `Text`, never in markup:
control characters, escape sequences and bidi controls are shown as visible escapes, so model
output can neither inject rich markup nor act on the terminal, and secrets are scrubbed.
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
)
from canary.reports.model import EvidenceSample, Report
from canary.reports.rows import (
    ALERT_COLUMNS,
    IMPACT_COLUMNS,
    alert_tables,
    impact_rows,
    labels_text,
)
from canary.sanitize import one_line, printable

_MARK = {"regressed": "✗", "inconclusive": "?", "ok": "✓", "no data": "·"}
_ALERT_STYLE = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
_SPAN_STYLE = "bold white on red"


def render_terminal(report: Report, console: Console) -> None:
    """Print the whole report: grid, alerts, pools, impact, evidence, changes, notes."""
    window = f"{report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC"
    selection = ",".join(f"{k}={v}" for k, v in sorted(report.selection.items())) or "all"
    header = Text.assemble(
        ("canary report ", "bold"), window, "  selection ", (one_line(selection), "cyan"),
        "  reference ", (one_line(report.reference), "cyan"),
    )  # fmt: skip
    console.print(header)
    _grid(report, console)
    _alerts(report, console)
    _pools(report, console)
    _impact(report, console)
    _evidence(report, console)
    _changes(report, console)
    for note in report.notes:
        console.print(Text(printable(f"note: {note}"), style="dim"))


def _grid(report: Report, console: Console) -> None:
    if not report.cells:
        console.print("no cohort has results in the window")
        return
    table = Table(title="cohort × metric: rate (vs reference) and per-round trend")
    table.add_column("cohort")
    for metric in report.metrics:
        table.add_column(_line(metric), justify="left")
    for cohort in report.cohorts:
        row: list[Text] = [_line(cohort.key)]
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
                    one_line(f"{cell.cohort} / {cell.metric}: {cell.reason}"),
                )
            )


def _alerts(report: Report, console: Console) -> None:
    if not report.alerts:
        console.print(Text("no alerts in the window", style="green"))
        return
    console.print(Text(f"{len(report.alerts)} alert(s), grouped as paged", style="bold"))
    for group, rows in alert_tables(report):
        if group.change is not None:
            c = group.change
            at = f"{c.at:%Y-%m-%d %H:%M:%S}"
            title = _line(f"change {c.change_id} ({c.kind}, {labels_text(c.labels)}, {at})")
            if c.note:
                title.append(one_line(f": {c.note}"), style="italic")
        else:
            title = Text("no attributed change")
        table = Table(title=title, title_justify="left")
        for column in ALERT_COLUMNS:
            table.add_column(column, justify="right" if column in ("id", "rate") else "left")
        for a, cells in rows:
            texts = [_line(cell) for cell in cells]
            texts[1] = Text(one_line(cells[1]), style=_ALERT_STYLE.get(a.status, ""))
            table.add_row(*texts)
        console.print(table)


def _pools(report: Report, console: Console) -> None:
    rows = pool_rows(report.pools)
    if not rows:
        return
    table = Table(title="each pool against the rest of the fleet (Holm-adjusted)")
    for column in POOL_COLUMNS:
        table.add_column(column, justify="left" if column in ("pool", "metric") else "right")
    for p, cells in rows:
        table.add_row(*map(_line, cells), style="bold red" if p.different else "")
    console.print(table)


def _impact(report: Report, console: Console) -> None:
    if not report.impact:
        return
    table = Table(title="impact of the regressed metrics: requests vs sessions")
    for column in IMPACT_COLUMNS:
        table.add_column(column, justify="left" if column in ("metric", "cohort") else "right")
    for cells in impact_rows(report.impact):
        table.add_row(*map(_line, cells))
    console.print(table)


def _evidence(report: Report, console: Console) -> None:
    for s in report.evidence:
        lines: list[Text] = [highlighted(s)]
        for span in s.spans:
            located = s.text[span.start : span.end]
            note = f"↳ [{span.start}:{span.end}] {located!r}: {span.note}"
            lines.append(Text(printable(note), "yellow"))
        lines += [Text(printable(line), style="dim") for line in detail_lines(s.metric, s.detail)]
        title = _line(f"{s.metric} · {s.cohort} · probe {s.probe_id} · result {s.result_id}")
        subtitle = _line(
            f"canary show {s.result_id}" + (f" · from {s.source}" if s.source != "evidence" else "")
        )
        console.print(Panel(Group(*lines), title=title, subtitle=subtitle, title_align="left"))


def _changes(report: Report, console: Console) -> None:
    if not report.changes:
        return
    console.print(Text("changes in the window", style="bold"))
    for c in report.changes:
        labels = labels_text(c.labels)
        console.print(
            _line(f"  {c.at:%Y-%m-%d %H:%M:%S}  {c.change_id}  {c.kind}  {labels}  {c.note}")
        )


def highlighted(sample: EvidenceSample) -> Text:
    """The sample's text, made printable piece by piece, with each located span styled.

    Spans index the raw text; escaping changes lengths, so each piece between span edges is
    made printable on its own and the styled pieces are assembled in order.
    """
    body, at = Text(), 0
    for span in sorted(sample.spans, key=lambda s: (s.start, s.end)):
        if span.start < at or span.end <= span.start:
            continue  # overlapping spans: the first one wins
        body.append(printable(sample.text[at : span.start]))
        body.append(printable(sample.text[span.start : span.end]), style=_SPAN_STYLE)
        at = span.end
    body.append(printable(sample.text[at:]))
    return body


def _line(value: object) -> Text:
    """Stored text as one inert line: control characters visible, never markup."""
    return Text(one_line(value))
