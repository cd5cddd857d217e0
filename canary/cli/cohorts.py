"""`canary cohorts`: every cohort's results, errors, monitors and open alerts; problems first."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from canary.cli.options import (
    DEFAULT_WINDOW,
    DbOption,
    JsonOption,
    SelectOption,
    SinceOption,
    SuitesOption,
    suite_list,
)
from canary.cli.output import console, fmt_time, print_json
from canary.sanitize import one_line

_STYLES = {"firing": "bold red", "pending": "yellow", "errors": "magenta", "silent": "dim"}


def cohorts(
    since: SinceOption = DEFAULT_WINDOW,
    select: SelectOption = None,
    suite: SuitesOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """List cohorts seen in the window: results, errors, last seen, monitors and open alerts.

    Problems come first: firing, then pending (an alert or a monitor), then cohorts with
    errors, then cohorts silent in the window that still have a monitor or alert open.
    """
    from canary.compare.suites import check_known
    from canary.config.selection import parse_label_filters
    from canary.stats.summaries import summary_spec
    from canary.store import open_store
    from canary.store.alert_values import cohort_text
    from canary.store.cohorts import cohort_health
    from canary.store.rollups import rollup_spec
    from canary.timespec import parse_time

    start = parse_time(since or DEFAULT_WINDOW)
    store = open_store(db)
    suites = suite_list(suite)
    check_known(store, suites)
    found = cohort_health(
        store,
        since=start,
        labels=parse_label_filters(select or []),
        suites=suites,
        spec=rollup_spec(summary_spec()),
    )
    if json:
        print_json(
            {
                "since": start,
                "cohorts": [{"cohort": cohort_text(h.labels), **h.to_dict()} for h in found],
            }
        )
        return
    if not found:
        console.print(f"no cohort has results since {fmt_time(start)}; try a longer --since")
        return
    table = Table(title=f"{len(found)} cohort(s) since {fmt_time(start)}")
    for column in ("status", "cohort", "results", "errors", "last seen", "monitors", "alerts"):
        table.add_column(column, justify="right" if column in ("results", "errors") else "left")
    for h in found:
        errors = f"{h.errors} ({h.error_rate:.1%})" if h.errors else "0"
        table.add_row(
            h.status,
            Text(one_line(cohort_text(h.labels))),  # labels come from the fleet and endpoints
            str(h.results),
            errors,
            fmt_time(h.last_seen),
            Text(one_line(_monitors(h.monitors))),
            str(h.open_alerts) if h.open_alerts else "-",
            style=_STYLES.get(h.status, ""),
        )
    console.print(table)


def _monitors(monitors: dict[str, str]) -> str:
    """``3 ok`` or ``code_fail firing, 2 ok``: the metrics that are not ok are named."""
    if not monitors:
        return "-"
    named = [f"{m} {s}" for m, s in sorted(monitors.items()) if s != "ok"]
    ok = sum(s == "ok" for s in monitors.values())
    return ", ".join([*named, *([f"{ok} ok"] if ok else [])])
