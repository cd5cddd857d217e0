"""On-call reports: one `Report` value built from the store, rendered for a terminal, as JSON
and as one self-contained HTML file.

`build_report(store, ResultFilter(since=…, labels=…))` gathers the cohort × metric grid
(status, rate, effect against the reference, per-round trend), open alerts grouped by their
change, each pool against the rest of the fleet, session-level impact, the worst evidence with
its offending span located, and the changes of the window. `render_terminal`, `Report.to_dict`
and `render_html` show the same content.
"""

from canary.reports.build import build_report
from canary.reports.html import render_html
from canary.reports.model import (
    AlertGroup,
    Cell,
    CellStatus,
    Cohort,
    EvidenceSample,
    ImpactRow,
    PoolTest,
    Report,
    Span,
    TrendPoint,
)
from canary.reports.terminal import render_terminal

__all__ = [
    "AlertGroup",
    "Cell",
    "CellStatus",
    "Cohort",
    "EvidenceSample",
    "ImpactRow",
    "PoolTest",
    "Report",
    "Span",
    "TrendPoint",
    "build_report",
    "render_html",
    "render_terminal",
]
