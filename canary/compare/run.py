"""`run_compare`: selectors in, a `Comparison` with evidence out (what `canary compare` calls)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from canary.compare.aggregate import (
    ERROR_RATE,
    LATENCY,
    Aggregate,
    CohortData,
    aggregate,
)
from canary.compare.gate import Comparison, compare
from canary.compare.selectors import Role, Selector, change_window, parse_selector
from canary.compare.suites import baseline_scope, check_known, check_sides
from canary.errors import ConfigError
from canary.records import ResultFilter
from canary.stats import DEFAULT_POLICIES, MetricPolicy
from canary.store import Store
from canary.store.reports import Worst, worst_result_ids

DEFAULT_BY = ("endpoint",)
EVIDENCE_PER_REGRESSION = 5


def resolve(
    store: Store,
    selector: Selector,
    role: Role,
    by: Sequence[str],
    policies: Mapping[str, MetricPolicy],
    window: timedelta,
    suites: Sequence[str] = (),
) -> tuple[Aggregate, ResultFilter | None]:
    """The aggregate a selector names, and the result filter behind it (None for baselines),
    restricted to ``suites`` (a baseline is checked against them by `baseline_scope`)."""
    if selector.baseline is not None:
        from canary.compare.baselines import load_baseline

        return load_baseline(store, selector.baseline).aggregate, None
    filt = selector.filter
    for run_id in filt.run_ids if filt is not None else ():
        store.get_run(run_id)  # "no run with id N; list runs with `canary runs`", not "no data"
    if selector.change is not None:
        from canary.store.changes import get_change

        change = get_change(store, selector.change)
        filt = change_window(role, change.at, change.labels, window)
    assert filt is not None
    filt = replace(filt, suites=tuple(suites))
    return aggregate(store, filt, by, policies), filt


def run_compare(
    store: Store,
    before: str,
    after: str,
    *,
    by: Sequence[str] | None = None,
    window: timedelta = timedelta(hours=24),
    policies: Mapping[str, MetricPolicy] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    now: datetime | None = None,
    suites: Sequence[str] = (),
) -> Comparison:
    """Compare what ``before`` and ``after`` select (see `canary.compare.selectors`), on the
    results of ``suites`` (see `canary.compare.suites`: a side that mixes suites is refused
    unless they are named; a baseline is compared on the suites it was captured for)."""
    policies = dict(DEFAULT_POLICIES if policies is None else policies)
    now = now or datetime.now(UTC)
    sel_b = parse_selector(before, "before", window=window, now=now)
    sel_a = parse_selector(after, "after", window=window, now=now)
    check_known(store, suites)
    scope = tuple(suites)
    agg_b: Aggregate | None = None
    if sel_b.baseline is not None:
        # A baseline carries its own grouping and suites (resolve ignores both for baselines).
        agg_b, _ = resolve(store, sel_b, "before", (), policies, window)
        if by is not None and tuple(by) != agg_b.by:
            raise ConfigError(
                f"baseline {sel_b.baseline!r} is grouped by {','.join(agg_b.by) or 'nothing'}; "
                "drop --by or re-capture the baseline with the grouping you want"
            )
        by = agg_b.by
        scope = baseline_scope(sel_b.baseline, agg_b, suites)
    by = tuple(by) if by is not None else DEFAULT_BY
    if agg_b is None:
        agg_b, _ = resolve(store, sel_b, "before", by, policies, window, scope)
    agg_a, filt_a = resolve(store, sel_a, "after", by, policies, window, scope)
    if sel_b.baseline is None and by and not set(agg_b.cohorts) & set(agg_a.cohorts):
        # No shared cohort (e.g. pool=gpu-a against pool=tpu-b): compare the sides whole.
        agg_b, _ = resolve(store, sel_b, "before", (), policies, window, scope)
        agg_a, filt_a = resolve(store, sel_a, "after", (), policies, window, scope)
    agg_b.description = agg_b.description or before
    check_sides(agg_b, agg_a, scope)
    comparison = compare(agg_b, agg_a, policies, alpha=alpha, power=power)
    comparison = replace(comparison, suites=scope or agg_a.suite_names or agg_b.suite_names)
    if filt_a is not None:
        evidence = {
            f"{v.cohort}/{v.metric}": evidence_ids(
                store, filt_a, _cohort(agg_a, v.cohort), v.metric, policies
            )
            for v in comparison.verdicts
            if v.verdict == "regression"
        }
        comparison = replace(comparison, evidence=evidence)
    return comparison


def _cohort(agg: Aggregate, name: str) -> CohortData | None:
    key = name.split(" → ")[-1].split(" @")[0]
    return agg.cohorts.get(key)


def evidence_ids(
    store: Store,
    filt: ResultFilter,
    cohort: CohortData | None,
    metric: str,
    policies: Mapping[str, MetricPolicy],
    limit: int = EVIDENCE_PER_REGRESSION,
) -> list[int]:
    """Result ids that show a regression: flagged results, errors, or the worst values."""
    if cohort is None:
        return []
    worst = worst_of(metric, policies.get(metric))
    return worst_result_ids(store, filt, sorted(cohort.cohort_ids), metric, worst, limit)


def worst_of(metric: str, policy: MetricPolicy | None) -> Worst:
    """Which results show ``metric`` at its worst, from how the metric is measured."""
    if metric == ERROR_RATE:
        return "errors"
    if metric == LATENCY:
        return "slowest"
    if policy is not None and policy.kind == "rate":
        return "flagged"
    if policy is not None and policy.direction == "lower_is_worse":
        return "lowest"
    return "highest"
