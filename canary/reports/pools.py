"""Which pool (or hardware) is different: each one against the pooled rest of the fleet.

A pool that differs from its own baseline may be a fleet-wide change; a pool that differs from
its siblings *now*, on the same probes, points at that pool. Each pool's flag rate is tested
against the pooled rate of the other pools with its kind's test (`canary.stats.kinds`; for rates
the one-sided Fisher exact test: is this pool worse?), and the p-values of every pool × metric
test are Holm-adjusted as one family: the question is "is any pool different", so the family-wise
error is the right guarantee, and Holm gives it without assuming independence. A pool is marked
different when its adjusted p is below α and the difference exceeds the metric's margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from canary.compare.aggregate import Aggregate, aggregate
from canary.records import ResultFilter
from canary.reports.grid import flag_metrics
from canary.reports.model import PoolTest
from canary.stats import MetricPolicy
from canary.stats.kinds import RateCounts, stat_test
from canary.stats.multiple import holm_adjust
from canary.store import Store

#: Labels that name a group of replicas sharing hardware and software, in this order.
POOL_LABELS = ("pool", "hardware")


def compare_pools(
    store: Store,
    *,
    since: datetime,
    until: datetime,
    selection: Mapping[str, str],
    metrics: Sequence[str],
    policies: Mapping[str, MetricPolicy],
    labels: Sequence[str] = POOL_LABELS,
    alpha: float = 0.05,
    suites: Sequence[str] = (),
) -> list[PoolTest]:
    """Every pool × metric against the other pools, on the results of ``suites`` (default
    all); labels with fewer than two values skip."""
    rates = flag_metrics({m: policies[m] for m in metrics if m in policies})
    window = ResultFilter(labels=dict(selection), since=since, until=until, suites=tuple(suites))
    raw: list[tuple[str, str, str, int, int, int, int, float]] = []
    # A selected label has one value: nothing to compare it with.
    wanted = tuple(label for label in labels if label not in selection)
    # One aggregate grouped by every pool label at once, summed per label below.
    summary = aggregate(store, window, wanted, rates) if wanted else Aggregate(wanted)
    for label in wanted:
        counts: dict[str, dict[str, tuple[int, int]]] = {}
        for cohort in summary.cohorts.values():
            value = cohort.labels.get(label, "")
            if not value:
                continue  # results without the label (the front door) are no pool
            pool = counts.setdefault(value, {})
            for m, d in cohort.metrics.items():
                if m in rates and (dk_dn := d.flag_counts()) is not None:
                    k, n = pool.get(m, (0, 0))
                    pool[m] = (k + dk_dn[0], n + dk_dn[1])
        if len(counts) < 2:
            continue
        for metric, policy in rates.items():
            for value in sorted(counts):
                k, n = counts[value].get(metric, (0, 0))
                rest_k = sum(c.get(metric, (0, 0))[0] for v, c in counts.items() if v != value)
                rest_n = sum(c.get(metric, (0, 0))[1] for v, c in counts.items() if v != value)
                if n == 0 or rest_n == 0:
                    continue
                rest, pool_counts = RateCounts(n=rest_n, k=rest_k), RateCounts(n=n, k=k)
                result = stat_test(policy.kind).test(rest, pool_counts, policy, alpha, 0.8)
                raw.append((label, value, metric, k, n, rest_k, rest_n, result.p_value))
    adjusted = holm_adjust([r[7] for r in raw])
    tests = []
    for (label, value, metric, k, n, rest_k, rest_n, p), q in zip(raw, adjusted, strict=True):
        effect = k / n - rest_k / rest_n
        tests.append(
            PoolTest(
                label=label,
                value=value,
                metric=metric,
                k=k,
                n=n,
                rest_k=rest_k,
                rest_n=rest_n,
                rate=k / n,
                rest_rate=rest_k / rest_n,
                effect=effect,
                p_value=None if math.isnan(p) else p,
                p_holm=None if math.isnan(q) else q,
                different=not math.isnan(q) and q < alpha and effect > rates[metric].margin,
            )
        )
    return tests
