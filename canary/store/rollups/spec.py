"""What a rollup keeps: the aggregations, and the bins and category keys per metric."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canary.store.binning import Bins

ERRORS = "errors"
FLAGS = "flags"
LATENCY = "latency"
BINS = "bins"
CATEGORIES = "categories"


@dataclass(frozen=True)
class RollupSpec:
    """What the rollups summarise beyond flag counts: which metrics get which bins, and which
    evidence key is each distribution metric's category. Built from what the detectors
    declare (`rollup_spec`, from `canary.stats.summaries.summary_spec`)."""

    bins: Mapping[str, Bins] = field(default_factory=dict)
    """Score metric → its fixed bins (continuous metrics)."""
    latency: Mapping[str, Bins] = field(default_factory=dict)
    """Results-table latency metric → its bins."""
    categories: Mapping[str, str] = field(default_factory=dict)
    """Distribution metric → the evidence key holding its category."""

    @property
    def key(self) -> str:
        """A hash of the spec: rollups built under another spec are not used."""
        canonical = json.dumps(
            {
                "bins": {m: _bins_json(b) for m, b in sorted(self.bins.items())},
                "latency": {m: _bins_json(b) for m, b in sorted(self.latency.items())},
                "categories": dict(sorted(self.categories.items())),
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def rollup_spec(declared: Any) -> RollupSpec:
    """The store's form of ``declared``, a `canary.stats.summaries.SummarySpec` (what the
    detectors declare): callers above the store pass `summary_spec()`."""

    def as_bins(spec: Mapping[str, tuple[float, float, int, str]]) -> dict[str, Bins]:
        return {m: Bins(lo, hi, n, scale) for m, (lo, hi, n, scale) in spec.items()}

    return RollupSpec(
        bins=as_bins(declared.bins),
        latency=as_bins(declared.latency),
        categories=dict(declared.categories),
    )


def _bins_json(bins: Bins) -> list[Any]:
    return [bins.lo, bins.hi, bins.bins, bins.scale]
