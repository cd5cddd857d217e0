"""Per-metric test policy: which test, which direction is worse, and what difference matters.

A policy is config (strict pydantic, one docstring per field). The margin is the smallest
difference that is a regression in practice: honest bf16 noise moves every metric a little, and a
test on millions of probes finds that "significant". Only a difference beyond the margin counts.

Continuous metrics are compared as histograms on fixed per-metric bin edges (`histogram_edges`),
so a baseline captured months ago and today's data share edges without either side re-binning.

The defaults are what the registered detectors declare (`canary.detectors.Metric`):
`DEFAULT_POLICIES` and `DEFAULT_BINNING` are read from the detector registry on first use, so a
plugin's metrics get their own policy and bins with no table to edit here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canary.stats.binning import Binning, BinScale

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

Direction = Literal["higher_is_worse", "lower_is_worse", "two_sided"]
"""Which change is worse. ``two_sided`` (continuous only): a shift either way beyond the margin
is a regression, and there is no improvement (entropy and compressibility move both ways under
different faults: corruption raises them, degenerate repetition lowers them)."""

MetricKind = str
"""A registered metric kind (`canary.stats.kinds.stat_tests`): ``rate``, ``continuous``,
``distribution`` or a plugin's."""


#: Which directions a metric kind allows: installed by `canary.stats.kinds` (which imports this
#: module, so the lookup is handed down rather than imported up).
_directions_of: Callable[[str], frozenset[str]] | None = None


def install_direction_lookup(lookup: Callable[[str], frozenset[str]]) -> None:
    """Called once by `canary.stats.kinds`: how a policy finds the directions of its kind."""
    global _directions_of
    _directions_of = lookup


class MetricPolicy(BaseModel):
    """How one metric is tested and what size of change is a regression."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    """The stored metric name (a detector's score name)."""
    kind: MetricKind
    """``rate``: flagged/total counts; ``continuous``: histograms; ``distribution``: category
    counts; or a kind a plugin registers in `canary.stats.kinds.stat_tests`."""
    direction: Direction = "higher_is_worse"
    """Which change is worse; ``two_sided`` only for continuous metrics; distributions ignore it
    (any change of the category mix is worse)."""
    margin: Annotated[float, Field(ge=0)]
    """Practical-significance margin in the metric's units: an absolute rate difference for
    rates, a Hodges–Lehmann shift for continuous metrics, Cohen's w (allocation-free) for
    distributions."""
    critical: bool = False
    """A critical metric that cannot be shown clean (inconclusive) makes the whole gate
    inconclusive; a regression of any metric fails the gate."""
    relative_margin: Annotated[float, Field(ge=0)] = 0.0
    """The margin relative to the before value (0.5: a rate may rise by half of itself); the
    margin used is the larger of ``margin`` and ``relative_margin × |before|``, so a metric with
    a high base rate is not held to a margin its own noise cannot meet."""
    reason: str = ""
    """Why the margin is what it is (shown next to verdicts; a margin nobody can justify is a
    margin nobody will keep)."""

    def margin_at(self, before: float) -> float:
        """The margin in force when the before value is ``before`` (absolute or relative)."""
        if not math.isfinite(before):
            return self.margin
        return max(self.margin, self.relative_margin * abs(before))

    @model_validator(mode="after")
    def _kind_allows_direction(self) -> MetricPolicy:
        if _directions_of is None:  # pragma: no cover - canary.stats always installs it
            raise RuntimeError("import canary.stats before building a MetricPolicy")
        allowed = _directions_of(self.kind)
        if self.direction not in allowed:
            raise ValueError(
                f"metric {self.metric!r}: direction {self.direction!r} is not supported for "
                f"{self.kind} metrics; use {' or '.join(repr(d) for d in sorted(allowed))}"
            )
        return self


V = TypeVar("V")


class _Declared(Mapping[str, V]):
    """A read-only mapping computed from the detector registry each time it changes."""

    def __init__(self, build: str) -> None:
        self._build = build
        self._key: tuple[str, ...] | None = None
        self._table: dict[str, V] = {}

    def _current(self) -> dict[str, V]:
        from canary.detectors import registry

        key = tuple(registry.detectors.names())
        if key != self._key:
            self._table = getattr(_Builders, self._build)()
            self._key = key
        return self._table

    def __getitem__(self, metric: str) -> V:
        return self._current()[metric]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __repr__(self) -> str:
        return f"{self._build}({self._current()!r})"


class _Builders:
    @staticmethod
    def policies() -> dict[str, MetricPolicy]:
        from canary.detectors.registry import declared_metrics

        return {
            name: MetricPolicy(
                metric=name,
                kind=m.kind,
                direction=m.direction,
                margin=m.margin,
                critical=m.critical,
                relative_margin=m.relative_margin,
                reason=m.reason,
            )
            for name, m in declared_metrics().items()
        }

    @staticmethod
    def binning() -> dict[str, Binning]:
        from canary.detectors.registry import declared_metrics

        return {
            name: Binning(lo=b.lo, hi=b.hi, bins=b.bins, scale=b.scale)
            for name, m in declared_metrics().items()
            if (b := m.binning) is not None
        }


DEFAULT_POLICIES: Mapping[str, MetricPolicy] = _Declared("policies")
"""Policies of every metric the registered detectors declare; config may override any of them."""

DEFAULT_BINNING: Mapping[str, Binning] = _Declared("binning")
"""Fixed per-metric bins, as the detectors declare them; never change a declared binning in
place (stored baselines use its edges)."""


def policy_for(
    metric: str,
    policies: Mapping[str, MetricPolicy] | None = None,
    *,
    scale: float | None = None,
) -> MetricPolicy:
    """The policy of ``metric``, from ``policies`` (default `DEFAULT_POLICIES`).

    Fallback for an unknown metric: continuous, ``two_sided`` (no direction is known), with a
    margin of 0.1 × ``scale`` (pass a robust spread of the baseline such as its IQR), or 0 when no
    scale is given — a zero margin means any significant shift is a regression, so give a scale.
    """
    table = DEFAULT_POLICIES if policies is None else policies
    if metric in table:
        return table[metric]
    margin = 0.1 * abs(scale) if scale is not None and math.isfinite(scale) else 0.0
    return MetricPolicy(metric=metric, kind="continuous", direction="two_sided", margin=margin)


def histogram_edges(
    metric: str,
    lo: float | None = None,
    hi: float | None = None,
    bins: int = 64,
    scale: BinScale = "linear",
) -> list[float]:
    """Bin edges for ``metric``: its `DEFAULT_BINNING` entry, else ``bins`` bins on [lo, hi]."""
    if metric in DEFAULT_BINNING and lo is None and hi is None:
        return DEFAULT_BINNING[metric].edges()
    if lo is None or hi is None:
        raise ValueError(f"metric {metric!r} has no default binning; pass lo and hi")
    return Binning(lo=lo, hi=hi, bins=bins, scale=scale).edges()


def histogram_counts(edges: ArrayLike, values: ArrayLike) -> list[int]:
    """Counts of ``values`` in the bins of ``edges`` (right-open; out-of-range clamped to the
    end bins; NaN dropped) — the same rule the SQL aggregation must follow: in PostgreSQL
    ``least(greatest(width_bucket(x, lo, hi, bins), 1), bins) - 1`` (on ``ln x``, ``ln lo``,
    ``ln hi`` for log bins)."""
    import numpy as np

    e = np.asarray(edges, dtype=float)
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    idx = np.clip(np.searchsorted(e, v, side="right") - 1, 0, len(e) - 2)
    return [int(c) for c in np.bincount(idx, minlength=len(e) - 1)]
