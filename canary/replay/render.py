"""The replay's results for people: rich tables on a terminal, or a Markdown table (what the
README and `benchmarks/replay.py` embed)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from canary.replay.analysis import DelayRow, FaultRow, ReplayReport
from canary.sanitize import markup_safe, one_line


def render_report(report: ReplayReport, console: Console) -> None:
    """Print the faults and impact tables, the alert counts, the budget and PASS or FAIL."""
    # Scenario names, faults and change ids come from a scenario file: Text, never markup.
    table = Table(title=Text(one_line(f"replay {report.scenario}: {report.seconds / 60:.1f} min")))
    for column in (
        "fault",
        "change",
        "detected in",
        "delay",
        "probes (sessions)",
        "minimum (sessions)",
        "ratio",
        "rate / baseline",
        "attributed to",
        "resolved",
    ):
        table.add_column(
            column, justify="right" if column.startswith(("probes", "minimum", "ratio")) else "left"
        )
    for f in report.faults:
        table.add_row(
            Text(one_line(f.fault)),
            Text(one_line(f.change)),
            Text(f"{one_line(f.cohort)}\n{one_line(f.metric)}" if f.detected else "not detected"),
            f.delay_sim,
            "-" if f.delay_probes is None else f"{f.delay_probes:,} ({f.delay_sessions:,})",
            "-" if f.minimum_sessions is None else f"{f.minimum_sessions:,.0f}",
            "-" if f.ratio is None else f"{f.ratio:.2f}×",
            "-" if f.rate is None else f"{f.rate:.2%} / {f.baseline_rate or 0:.2%}",
            Text(one_line(f.attribution_text)),
            _resolved(f),
            style="" if f.met_goals else "red",
        )
    console.print(table)
    console.print(
        f"false alerts on healthy cohorts: {len(report.false_alerts)}; "
        f"misattributed: {len(report.misattributed)}"
    )
    for line in report.false_alerts:
        console.print(f"  [red]false[/] {markup_safe(line)}")
    for line in report.misattributed:
        console.print(f"  [yellow]misattributed[/] {markup_safe(line)}")
    impact = Table(title="front door: request- vs session-level impact (first_divergence)")
    for column in ("phase", "requests", "request rate", "sessions", "session rate"):
        impact.add_column(column)
    for i in report.impact:
        impact.add_row(
            Text(one_line(i.phase)),
            str(i.requests),
            f"{i.request_rate:.2%}",
            str(i.sessions),
            f"{i.session_rate:.2%}",
        )
    console.print(impact)
    for line in report.budget:
        console.print(f"[dim]budget: {markup_safe(line)}[/]")
    console.print("[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]")


def render_markdown(report: ReplayReport) -> str:
    """The faults table, the alert counts and the impact table as GitHub Markdown."""
    lines = [
        "| fault | change | detected in | delay (sim) | probes (sessions) | theoretical min "
        "(sessions; oracle) | ratio | session rate vs baseline | attributed to | resolved "
        "after rollback |",
        "|---|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for f in report.faults:
        lines.append(
            f"| {f.fault} | {f.change} | {f.cohort} {f.metric} | {f.delay_sim} | "
            f"{_n(f.delay_probes)} ({_n(f.delay_sessions)}) | {_n(f.minimum_sessions)}; "
            f"{_n(f.oracle_sessions)} | "
            f"{_r(f.ratio)} | "
            f"{_pct(f.rate)} vs {_pct(f.baseline_rate)} | {f.attribution_text} | "
            f"{_resolved(f)} |"
        )
    lines.append("")
    lines.append(
        f"False alerts on healthy cohorts: **{len(report.false_alerts)}**; misattributed "
        f"alerts: **{len(report.misattributed)}**; wall time {report.seconds / 60:.1f} min."
    )
    lines.append("")
    lines.append(
        "| front-door user sessions, first_divergence | requests | request rate | sessions "
        "| session rate |"
    )
    lines.append("|---|---:|---:|---:|---:|")
    for i in report.impact:
        lines.append(
            f"| {i.phase} | {i.requests} | {i.request_rate:.2%} | {i.sessions} | "
            f"{i.session_rate:.2%} |"
        )
    return "\n".join(lines)


def render_delays(rows: list[DelayRow]) -> str:
    """Detection delay per fault without and with adaptive probing, as a Markdown table."""
    lines = [
        "| fault | delay (ticks, sessions) | with adaptive probing |",
        "|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.fault} | {_n(r.ticks)}, {_n(r.sessions)} | "
            f"{_n(r.adaptive_ticks)}, {_n(r.adaptive_sessions)} |"
        )
    return "\n".join(lines)


def _n(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}×"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _resolved(f: FaultRow) -> str:
    """Whether the fault's alerting ended after its rollback, and how many alerts closed early."""
    early = f" ({f.early_resolves} before it)" if f.early_resolves else ""
    return _yes(f.resolved_after_rollback) + early


def _yes(x: bool | None) -> str:
    return "-" if x is None else ("yes" if x else "no")
