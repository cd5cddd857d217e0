"""The report for a terminal: rich tables, coloured statuses, sparklines, highlighted spans.

Every string that came from the store (labels, change ids and notes, probe ids, model output)
passes `canary.sanitize.printable` (or `one_line`) and is put in a rich `Text`, never in markup:
control characters, escape sequences and bidi controls are shown as visible escapes, so model
output can neither inject rich markup nor act on the terminal, and secrets are scrubbed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.cells import cell_len
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
from canary.reports.names import cohort_column
from canary.reports.rows import (
    ALERT_COLUMNS,
    IMPACT_COLUMNS,
    SERVED_COLUMNS,
    alert_tables,
    impact_rows,
    labels_text,
    served_rows,
)
from canary.sanitize import one_line, printable

_MARK = {"regressed": "✗", "inconclusive": "?", "ok": "✓", "no data": "·"}
_ALERT_STYLE = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
_SPAN_STYLE = "bold white on red"
#: Columns a rich table spends on each column beyond its text: padding and a rule.
_COLUMN_EDGES = 3


def render_terminal(report: Report, console: Console) -> None:
    """Print the whole report: grid, alerts, pools, impact, evidence, changes, notes."""
    window = f"{report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC"
    selection = ",".join(f"{k}={v}" for k, v in sorted(report.selection.items())) or "all"
    header = Text.assemble(
        ("canary report ", "bold"), window, "  selection ", (one_line(selection), "cyan"),
        "  reference ", (one_line(report.reference), "cyan"),
    )  # fmt: skip
    if report.suites:
        header.append_text(Text.assemble("  suite ", (one_line(",".join(report.suites)), "cyan")))
    console.print(header)
    _grid(report, console)
    _alerts(report, console)
    _pools(report, console)
    _served(report, console)
    _impact(report, console)
    _evidence(report, console)
    _changes(report, console)
    for note in report.notes:
        console.print(Text(printable(f"note: {note}"), style="dim"))


def _grid(report: Report, console: Console) -> None:
    if not report.cells:
        console.print("no cohort has results in the window")
        return
    names = cohort_column([c.key for c in report.cohorts], report.by)
    keys = [c.key for c in report.cohorts]
    cells = {(k, m): _cell_text(report, k, m) for k in keys for m in report.metrics}
    first = max([_width(names.header), *(_width(names.name(k)) for k in keys)])
    widths = {m: max([_width(m), *(_width(cells[k, m]) for k in keys)]) for m in report.metrics}
    chunks = metric_chunks(report.metrics, widths, first, console.width)
    for i, metrics in enumerate(chunks):
        title = "cohort × metric: rate (vs reference) and per-round trend"
        if len(chunks) > 1:
            title += f" ({i + 1}/{len(chunks)})"
        if names.shared:
            title += f"; every row {names.shared}"
        table = Table(title=_line(title))
        table.add_column(_line(names.header), overflow="fold")
        for metric in metrics:
            table.add_column(_line(metric), justify="left", overflow="fold")
        for cohort in report.cohorts:
            table.add_row(_line(names.name(cohort.key)), *(cells[cohort.key, m] for m in metrics))
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


def _cell_text(report: Report, cohort: str, metric: str) -> Text:
    cell = report.cell(cohort, metric)
    if cell is None:
        return Text("·", style="dim")
    text = Text(f"{_MARK[cell.status]} {pct(cell.rate)}", style=STATUS_STYLE[cell.status])
    if cell.effect is not None:
        text.append(f" ({signed_pct(cell.effect)})")
    text.append("\n" + sparkline([p.rate for p in cell.trend]), style="cyan")
    return text


def metric_chunks(
    metrics: Sequence[str], widths: Mapping[str, int], first: int, total: int
) -> list[list[str]]:
    """The metric columns split into tables that each fit ``total`` columns beside the cohort
    column (``first`` wide), so names and cells stay whole; a column too wide alone wraps."""
    chunks: list[list[str]] = []
    used = 0
    for metric in metrics:
        need = widths[metric] + _COLUMN_EDGES
        if chunks and used + need <= total:
            chunks[-1].append(metric)
            used += need
        else:
            chunks.append([metric])
            used = 1 + first + _COLUMN_EDGES + need
    return chunks or [[]]


def _width(value: str | Text) -> int:
    text = value if isinstance(value, Text) else Text(one_line(value))
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


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
            right = column in ("id", "rate")
            table.add_column(column, justify="right" if right else "left", overflow="fold")
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
    # The verdict column goes under the difference: seven columns do not fit 80.
    for column in POOL_COLUMNS[:-1]:
        left = column in ("pool", "metric")
        table.add_column(column, justify="left" if left else "right", overflow="fold")
    for p, cells in rows:
        *shown, verdict = cells
        shown[4] += f"\n{verdict}" if verdict else ""
        table.add_row(*map(_lines, shown), style="bold red" if p.different else "")
    console.print(table)


def _served(report: Report, console: Console) -> None:
    if not report.served:
        return
    margin = report.served[0].margin
    table = Table(title=f"served model: KL from the reference per probe (margin {margin:g})")
    for column in SERVED_COLUMNS:
        left = column in ("served by", "model")
        table.add_column(column, justify="left" if left else "right", overflow="fold")
    for row, cells in zip(report.served, served_rows(report.served), strict=True):
        table.add_row(*map(_line, cells), style="bold red" if row.verdict == "different" else "")
    console.print(table)


def _impact(report: Report, console: Console) -> None:
    if not report.impact:
        return
    names = cohort_column([c.key for c in report.cohorts], report.by)
    title = "impact of the regressed metrics: requests vs sessions"
    table = Table(title=_line(title + (f"; every row {names.shared}" if names.shared else "")))
    for column in IMPACT_COLUMNS:
        left = column in ("metric", "cohort")
        header = names.header if column == "cohort" else column
        table.add_column(_line(header), justify="left" if left else "right", overflow="fold")
    for metric, cohort, *counts in impact_rows(report.impact):
        table.add_row(*map(_line, [metric, names.name(cohort), *counts]))
    console.print(table)


def _evidence(report: Report, console: Console) -> None:
    for s in report.evidence:
        lines: list[Text] = [highlighted(s)]
        for span in s.spans:
            located = s.text[span.start : span.end]
            note = f"↳ [{span.start}:{span.end}] {located!r}: {span.note}"
            lines.append(Text(printable(note), "yellow"))
        lines += [Text(printable(line), style="dim") for line in detail_lines(s.metric, s.detail)]
        # A panel title is cut at the panel's width: the cohort goes in the body, which wraps.
        lines.insert(0, Text(one_line(f"{s.cohort} · probe {s.probe_id}"), style="dim"))
        title = _line(f"{s.metric} · result {s.result_id}")
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


def _lines(value: str) -> Text:
    """Stored text, one inert line per line of ``value``."""
    return Text("\n").join(_line(part) for part in value.split("\n"))


def _line(value: object) -> Text:
    """Stored text as one inert line: control characters visible, never markup."""
    return Text(one_line(value))
