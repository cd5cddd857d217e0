"""The cells of the alert and impact tables, built once for the terminal and HTML renderers
(as `canary.reports.format.pool_rows` is for pools), so both show the same text.

Cells are raw stored text; each renderer makes them inert its own way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from canary.reports.format import pct
from canary.reports.model import AlertGroup, ImpactRow, Report

if TYPE_CHECKING:
    from canary.store.alert_values import Alert

ALERT_COLUMNS = ("id", "status", "metric", "cohort", "rate", "baseline", "sessions", "fired")
IMPACT_COLUMNS = ("metric", "cohort", "requests flagged", "sessions flagged")


def alert_tables(report: Report) -> list[tuple[AlertGroup, list[tuple[Alert, list[str]]]]]:
    """One table per alert group, as paged: each alert with its cells in `ALERT_COLUMNS`
    order."""
    by_id = {a.id: a for a in report.alerts}
    return [
        (group, [(by_id[i], alert_cells(by_id[i])) for i in group.alert_ids])
        for group in report.alert_groups
    ]


def alert_cells(a: Alert) -> list[str]:
    """One alert's row: rate since onset against the baseline's bound, sessions hit, firing."""
    return [
        str(a.id),
        a.status,
        a.metric,
        a.cohort,
        f"{a.rate:.1%} ({a.k}/{a.n})",
        f"≤ {a.baseline_rate:.1%}",
        pct(a.impact["session_rate"]) if a.impact else "-",
        f"{a.fired_at:%H:%M:%S}" if a.fired_at else "-",
    ]


def impact_rows(impact: Sequence[ImpactRow]) -> list[list[str]]:
    """Each regressed metric × cohort in `IMPACT_COLUMNS` order: flagged share of requests
    next to flagged share of sessions."""
    return [_impact_cells(row) for row in impact]


def _impact_cells(row: ImpactRow) -> list[str]:
    i = row.impact
    return [
        row.metric,
        row.cohort,
        f"{i.request_rate:.1%} ({i.flagged_requests}/{i.requests})",
        f"{i.session_rate:.1%} ({i.flagged_sessions}/{i.sessions})",
    ]


def labels_text(labels: Mapping[str, str]) -> str:
    """A change's cohorts as ``k=v,…``, or ``whole fleet`` when it names none."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "whole fleet"
