"""The cells of the alert and impact tables, built once for the terminal and HTML renderers
(as `canary.reports.format.pool_rows` is for pools), so both show the same text.

Cells are raw stored text; each renderer makes them inert its own way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from canary.reports.format import pct
from canary.reports.model import AlertGroup, ImpactRow, Report, ServedModel

if TYPE_CHECKING:
    from canary.store.alert_values import Alert

ALERT_COLUMNS = ("id", "status", "metric", "cohort", "rate", "baseline", "sessions", "fired")
IMPACT_COLUMNS = ("metric", "cohort", "requests flagged", "sessions flagged")
SERVED_COLUMNS = ("served by", "probes", "mean KL", "p99 KL", "mismatched", "model")


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


def served_rows(served: Sequence[ServedModel]) -> list[list[str]]:
    """Each pool in `SERVED_COLUMNS` order: its probes' KL from the reference and the verdict
    with the p-value that decided it."""
    return [_served_cells(row) for row in served]


def _served_cells(row: ServedModel) -> list[str]:
    if row.verdict == "different":
        verdict = f"different (p{_p(row.p_different)})"
    elif row.verdict == "same":
        verdict = f"same (p{_p(row.p_same)})"
    else:
        verdict = "inconclusive"
    share = "-"
    if row.judged:
        share = f"{row.mismatched / row.judged:.1%} ({row.mismatched}/{row.judged})"
    return [row.served, str(row.probes), f"{row.mean_kl:.2g}", f"{row.p99_kl:.2g}", share, verdict]


def _p(value: float) -> str:
    return "<1e-16" if value < 1e-16 else f"={value:.2g}"
