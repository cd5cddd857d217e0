"""`canary compare` for a terminal: the verdict table, evidence pointers, notes, the gate line.

Ten columns fit a wide terminal; at 80 they left one character per column. When the full table
does not fit, each cohort gets its own table (its name in the title, where it wraps), the verdict
goes under the metric name and the raw p-value is left out (q decides; `--json` has it), so
every name and number stays whole.

Selectors, cohort labels and notes were typed by users or sent by endpoints: they go in as
`Text` or through `markup_safe`, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from canary.compare import Comparison
from canary.reports.format import num
from canary.reports.names import CohortColumn, cohort_column
from canary.sanitize import markup_safe, one_line
from canary.stats import MetricVerdict

VERDICT_STYLE = {
    "regression": "bold red",
    "inconclusive": "yellow",
    "improvement": "green",
    "pass": "",
    "no_data": "dim",
}
_NUMBERS = ("before", "after", "effect [CI]", "p", "q", "MDE", "n before/after")
_NARROW_NUMBERS = ("before → after", "effect [CI]", "q", "MDE", "n")


def render_comparison(comparison: Comparison, console: Console, *, show_all: bool = False) -> None:
    """Print ``comparison``: verdicts (passing ones with ``show_all``), evidence, notes, gate."""
    names = cohort_column(sorted({v.cohort for v in comparison.verdicts}), comparison.by)
    title = f"{comparison.before}  →  {comparison.after}"
    scope = [f"suite {','.join(comparison.suites)}"] if comparison.suites else []
    scope += [f"every row {names.shared}"] if names.shared else []
    title += "".join(f"; {s}" for s in scope)
    shown = [v for v in comparison.verdicts if show_all or v.verdict != "pass"]
    if shown:
        wide = _wide_table(title, shown, names)
        unbounded = console.options.update_width(10**6)
        if Measurement.get(console, unbounded, wide).maximum <= console.width:
            console.print(wide)
        else:
            console.print(Text(one_line(title), style="bold"))
            for cohort in dict.fromkeys(v.cohort for v in shown):
                rows = [v for v in shown if v.cohort == cohort]
                console.print(_narrow_table(f"{names.header} {names.name(cohort)}", rows))
    passed = sum(v.verdict == "pass" for v in comparison.verdicts)
    console.print(f"{len(comparison.verdicts)} tests, {passed} pass (* = critical metric)")
    for key, ids in comparison.evidence.items():
        if ids:
            console.print(
                f"evidence for {markup_safe(key, single_line=True)}: "
                + ", ".join(f"canary show {i}" for i in ids[:3])
                + (f" (+{len(ids) - 3})" if len(ids) > 3 else "")
            )
    for note in comparison.notes:
        console.print(f"[dim]note: {markup_safe(note)}[/]")
    gate = comparison.gate
    colour = {"pass": "green", "regression": "red", "inconclusive": "yellow"}[gate.status]
    console.print(f"gate: [bold {colour}]{gate.status.upper()}[/] (exit {gate.exit_code})")


def _wide_table(title: str, verdicts: Sequence[MetricVerdict], names: CohortColumn) -> Table:
    table = Table(title=Text(one_line(title)))
    for column in (names.header, "metric", "verdict"):
        table.add_column(Text(one_line(column)), overflow="fold")
    for column in _NUMBERS:
        table.add_column(column, justify="right", overflow="fold")
    for v in verdicts:
        r = v.result
        table.add_row(
            Text(one_line(names.name(v.cohort))),
            _metric(v),
            v.verdict,
            num(r.estimate_before),
            num(r.estimate_after),
            f"{num(r.effect)} [{num(r.ci_low)}, {num(r.ci_high)}]",
            num(r.p_value),
            num(v.q_value),
            num(r.mde),
            f"{r.n_before}/{r.n_after}",
            style=VERDICT_STYLE.get(v.verdict, ""),
        )
    return table


def _narrow_table(title: str, verdicts: Sequence[MetricVerdict]) -> Table:
    table = Table(title=Text(one_line(title)), title_justify="left")
    table.add_column("metric / verdict", overflow="fold")
    for column in _NARROW_NUMBERS:
        table.add_column(column, justify="right", overflow="fold")
    for v in verdicts:
        r = v.result
        table.add_row(
            _metric(v).append(f"\n{v.verdict}"),
            f"{num(r.estimate_before)} → {num(r.estimate_after)}",
            f"{num(r.effect)} [{num(r.ci_low)}, {num(r.ci_high)}]",
            num(v.q_value),
            num(r.mde),
            f"{r.n_before}/{r.n_after}",
            style=VERDICT_STYLE.get(v.verdict, ""),
        )
    return table


def _metric(v: MetricVerdict) -> Text:
    return Text(one_line(v.metric + (" *" if v.critical else "")))
