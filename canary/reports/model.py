"""The on-call report as one value: every renderer (terminal, JSON, HTML) reads only this.

Building and rendering are separate so the three outputs cannot disagree: `to_dict` is the
JSON form, and the terminal and HTML renderers show the same fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from canary.compare.served import ServedModel

if TYPE_CHECKING:
    from canary.store.alert_values import Alert
    from canary.store.changes import Change
    from canary.store.impact import CohortImpact

CellStatus = Literal["ok", "regressed", "inconclusive", "no data"]
STATUSES: tuple[CellStatus, ...] = ("regressed", "inconclusive", "ok", "no data")


@dataclass(frozen=True)
class TrendPoint:
    """One round (run) of one cohort × metric: the sparkline and the time-series plot."""

    at: datetime
    """When the round's first result of this cohort started."""
    run_id: int
    k: int
    n: int
    rate: float


@dataclass(frozen=True)
class Cell:
    """One cohort × rate metric in the window, and why it has its status."""

    cohort: str
    metric: str
    status: CellStatus
    reason: str
    """One line a person can check: which alert, test or monitor decided the status."""
    k: int
    n: int
    rate: float | None
    baseline_rate: float | None
    """The reference's point estimate (baseline or earlier window), None without one."""
    effect: float | None
    """rate − baseline_rate (positive: worse)."""
    verdict: str | None = None
    """The gate's verdict of window vs reference (`canary.stats.verdicts`), None if untested."""
    q_value: float | None = None
    monitor: str | None = None
    """The daemon's monitor status (ok, pending, firing), None when no live monitor."""
    alert_ids: list[int] = field(default_factory=list)
    trend: list[TrendPoint] = field(default_factory=list)


@dataclass(frozen=True)
class Cohort:
    """A row of the grid: the cohort labels the report groups by."""

    key: str
    labels: dict[str, str]


@dataclass(frozen=True)
class AlertGroup:
    """Alerts paged together: every cohort one change degraded, or one unattributed alert."""

    key: str
    change: Change | None
    alert_ids: list[int]


@dataclass(frozen=True)
class PoolTest:
    """One pool's flag rate against the pooled rate of the other pools, for one metric."""

    label: str
    """The label that names pools (``pool``, ``hardware``)."""
    value: str
    metric: str
    k: int
    n: int
    rest_k: int
    rest_n: int
    rate: float
    rest_rate: float
    effect: float
    """rate − rest_rate."""
    p_value: float | None
    """One-sided Fisher exact p that this pool is worse than the rest."""
    p_holm: float | None
    """Holm-adjusted across every pool × metric test of the report."""
    different: bool
    """Holm-significant at α and the effect beyond the metric's margin."""


@dataclass(frozen=True)
class ImpactRow:
    """Request-level next to session-level impact of one regressed metric, per cohort."""

    metric: str
    cohort: str
    impact: CohortImpact


@dataclass(frozen=True)
class Span:
    """A located offending part of `EvidenceSample.text`: ``text[start:end]``."""

    start: int
    end: int
    kind: str
    """unexpected_script, syntax_error, divergence, not_argmax, mojibake."""
    note: str


@dataclass(frozen=True)
class EvidenceSample:
    """One flagged output behind a regression, with the offending span located."""

    result_id: int
    cohort: str
    metric: str
    probe_id: str
    endpoint: str
    started_at: datetime
    text: str
    """The output, or a window of it around the first span (see `text_offset`)."""
    text_offset: int
    """Where `text` starts in the full output (spans are relative to `text`)."""
    spans: list[Span]
    detail: dict[str, Any]
    """Metric-specific facts: both tokens and logprobs, the parse error, the scripts."""
    source: str
    """``evidence`` (stored score evidence), ``output`` (re-derived from the raw output) or
    ``context`` (the output was pruned; the stored evidence context is shown)."""


@dataclass(frozen=True)
class Report:
    """Everything `canary report` shows, for one window and label selection."""

    generated_at: datetime
    since: datetime
    until: datetime
    selection: dict[str, str]
    reference: str
    """What the window was tested against: ``baseline NAME`` or the earlier window."""
    by: tuple[str, ...]
    metrics: list[str]
    cohorts: list[Cohort]
    cells: list[Cell]
    alerts: list[Alert]
    """Alerts open now or resolved inside the window, newest first."""
    alert_groups: list[AlertGroup]
    pools: list[PoolTest]
    impact: list[ImpactRow]
    evidence: list[EvidenceSample]
    changes: list[Change]
    """Recorded changes inside the window that touch the selection (plot markers)."""
    notes: list[str] = field(default_factory=list)
    suites: tuple[str, ...] = ()
    """The suites the report is restricted to (`--suite`); empty: every suite."""
    served: list[ServedModel] = field(default_factory=list)
    """Per pool: is it serving the reference model (`model_equality`)?"""

    def cell(self, cohort: str, metric: str) -> Cell | None:
        return self._cells.get((cohort, metric))

    @cached_property
    def _cells(self) -> dict[tuple[str, str], Cell]:
        return {(c.cohort, c.metric): c for c in self.cells}

    @property
    def regressed(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "regressed"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: datetimes as ISO 8601, non-finite floats as null."""
        out = plain(self)
        assert isinstance(out, dict)
        return out


def plain(value: Any) -> Any:
    """A JSON-safe copy of report values (dataclasses, alerts, changes, datetimes)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, Report) or not hasattr(value, "to_dict"):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return plain(value.to_dict())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
