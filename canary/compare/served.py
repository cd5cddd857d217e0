"""Which model each pool serves: the `model_equality` detector's numbers per pool, decided
(the report's served-model table and `canary identity --stored`).

Every greedy topk/routing probe scored against the reference carries its mean next-token KL
from the reference (`model_kl`) and whether that is beyond numeric noise (`model_mismatch`).
Per pool (or per endpoint, for results carrying no pool label) the window's per-probe KLs are
read from the stored histograms and tested against the same margin `canary identity` uses:
`different` when the mean is above it with confidence, `same` when below, else inconclusive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from canary.compare.aggregate import aggregate
from canary.records import ResultFilter
from canary.stats import DEFAULT_POLICIES, Binning
from canary.stats.equivalence import DEFAULT_KL_MARGIN, binned_margin_test
from canary.stats.kinds import Histogram, RateCounts
from canary.store import Store

__all__ = ["KL_METRIC", "MISMATCH_METRIC", "ServedModel", "representatives", "served_models"]

KL_METRIC = "model_kl"
MISMATCH_METRIC = "model_mismatch"
#: The label that names a pool, else the endpoint: one row per served copy of the model.
POOL_LABEL = "pool"


@dataclass(frozen=True)
class ServedModel:
    """Is this pool serving the reference model? Its probes' KL from the reference, decided
    against a margin (`served_models`)."""

    served: str
    """``pool=NAME``, or ``endpoint=NAME`` for results without a pool label."""
    probes: int
    mean_kl: float
    """Mean over probes of each probe's mean next-token KL (nats/token), from the histogram."""
    p99_kl: float
    mismatched: int
    judged: int
    """`model_mismatch`: probes beyond numeric noise, of those judged."""
    verdict: str
    """``same``, ``different`` or ``inconclusive``."""
    p_different: float
    p_same: float
    kl_upper: float
    """One-sided upper bound of the mean KL (``same`` needs it under the margin)."""
    margin: float
    cohort_ids: tuple[int, ...] = ()
    """The stored cohorts the row sums (to find its evidence)."""


def served_models(
    store: Store,
    window: ResultFilter,
    *,
    alpha: float = 0.05,
    margin: float = DEFAULT_KL_MARGIN,
    label: str = POOL_LABEL,
) -> list[ServedModel]:
    """One row per ``label`` value (default: per pool; results without the label count
    under their endpoint) with `model_kl` scores in ``window``, worst first."""
    policies = {m: DEFAULT_POLICIES[m] for m in (KL_METRIC, MISMATCH_METRIC)}
    summary = aggregate(store, window, tuple(dict.fromkeys(("endpoint", label))), policies)
    merged: dict[str, _Sums] = {}
    for cohort in summary.cohorts.values():
        kl = cohort.metrics.get(KL_METRIC)
        if not isinstance(kl, Histogram) or not kl.counts:
            continue
        value = cohort.labels.get(label)
        served = f"{label}={value}" if value else f"endpoint={cohort.labels.get('endpoint', '')}"
        sums = merged.setdefault(served, _Sums([0] * len(kl.counts), kl.binning))
        sums.counts = [a + b for a, b in zip(sums.counts, kl.counts, strict=True)]
        mismatch = cohort.metrics.get(MISMATCH_METRIC)
        if isinstance(mismatch, RateCounts):
            sums.k, sums.n = sums.k + mismatch.k, sums.n + mismatch.n
        sums.cohort_ids |= cohort.cohort_ids
    rows = [_row(served, sums, alpha, margin) for served, sums in merged.items()]
    order = {"different": 0, "inconclusive": 1, "same": 2}
    return sorted(rows, key=lambda r: (order[r.verdict], -r.mean_kl, r.served))


@dataclass
class _Sums:
    counts: list[int]
    binning: Mapping[str, object] | None
    k: int = 0
    n: int = 0
    cohort_ids: set[int] = field(default_factory=set)


def _row(served: str, sums: _Sums, alpha: float, margin: float) -> ServedModel:
    values = representatives(Binning.model_validate(sums.binning or {}), len(sums.counts))
    test = binned_margin_test(values, sums.counts, margin=margin, alpha=alpha)
    return ServedModel(
        served=served,
        probes=test.units,
        mean_kl=test.mean,
        p99_kl=_quantile(values, sums.counts, 0.99),
        mismatched=sums.k,
        judged=sums.n,
        verdict=test.verdict,
        p_different=test.p_different,
        p_same=test.p_same,
        kl_upper=test.upper,
        margin=margin,
        cohort_ids=tuple(sorted(sums.cohort_ids)),
    )


def representatives(binning: Binning, bins: int) -> list[float]:
    """A value per bin: its geometric centre on log bins, its midpoint on linear ones (the
    first bin of a log binning also holds every value below its edge, exact zeros included)."""
    edges = binning.edges()
    if len(edges) != bins + 1:
        raise ValueError(f"histogram of {bins} bins does not match its binning")
    if binning.scale == "log":
        return [math.sqrt(a * b) for a, b in itertools.pairwise(edges)]
    return [(a + b) / 2 for a, b in itertools.pairwise(edges)]


def _quantile(values: Sequence[float], counts: Sequence[int], q: float) -> float:
    total = sum(counts)
    if not total:
        return math.nan
    seen = 0
    for value, count in zip(values, counts, strict=True):
        seen += count
        if seen >= q * total:
            return value
    return values[-1]
