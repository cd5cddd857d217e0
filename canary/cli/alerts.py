"""`canary alerts`: open alerts (or all of them), per cohort and metric, with their change."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from canary.cli.options import DbOption, JsonOption, SelectOption, SinceOption, optional_time
from canary.cli.output import console, print_json
from canary.sanitize import one_line


def alerts(
    all_: Annotated[
        bool, typer.Option("--all", help="Resolved alerts too (default: pending and firing).")
    ] = False,
    change: Annotated[
        str | None, typer.Option("--change", help="Only alerts attributed to this change id.")
    ] = None,
    since: SinceOption = None,
    select: SelectOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """List alerts: cohort, metric, rate against baseline, session impact, change, evidence."""
    from canary.alerts.queries import list_alerts
    from canary.config.selection import parse_label_filters
    from canary.store import open_store
    from canary.store.alert_values import OPEN_ALERT_STATUSES

    found = list_alerts(
        open_store(db),
        status=None if all_ else list(OPEN_ALERT_STATUSES),
        since=optional_time(since),
        labels=parse_label_filters(select or []),
        change_id=change,
    )
    if json:
        print_json({"alerts": [a.to_dict() for a in found]})
        return
    if not found:
        console.print("no alerts" + ("" if all_ else " open; `canary alerts --all` for history"))
        return
    table = Table(title=f"{len(found)} alert(s)")
    for column in ("id", "status", "metric", "cohort", "rate", "baseline", "sessions", "change"):
        table.add_column(column, justify="right" if column in ("id", "rate") else "left")
    styles = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
    for a in found:
        sessions = f"{a.impact['session_rate']:.1%}" if a.impact else "-"
        # Metric, cohort labels and change id come from config, endpoints and users: Text.
        table.add_row(
            str(a.id),
            Text(one_line(a.status)),
            Text(one_line(a.metric)),
            Text(one_line(a.cohort)),
            f"{a.rate:.2%} ({a.k}/{a.n})",
            f"≤ {a.baseline_rate:.2%}",
            sessions,
            Text(one_line(a.change_id or "-")),
            style=styles.get(a.status, ""),
        )
    console.print(table)
    console.print("evidence: `canary show RESULT_ID`; ids in `canary alerts --json`")
