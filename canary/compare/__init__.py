"""Baselines and the deploy gate: aggregate stored results in SQL, test, decide.

`run_compare(store, before, after)` is what `canary compare` calls: it resolves the two
selectors (baseline, run, window, change or labels), aggregates each side per cohort × metric,
tests every pair with the metric's policy, controls the FDR across the family and returns a
`Comparison` with the gate's status and the result ids behind every regression.
"""

from canary.compare.aggregate import Aggregate, aggregate
from canary.compare.baselines import (
    Baseline,
    capture_baseline,
    export_baseline,
    import_baseline,
    list_baselines,
    load_baseline,
    save_baseline,
)
from canary.compare.gate import Comparison, NotComparable, compare
from canary.compare.run import run_compare
from canary.compare.selectors import Selector, parse_selector
from canary.records import ResultFilter

__all__ = [
    "Aggregate",
    "Baseline",
    "Comparison",
    "NotComparable",
    "ResultFilter",
    "Selector",
    "aggregate",
    "capture_baseline",
    "compare",
    "export_baseline",
    "import_baseline",
    "list_baselines",
    "load_baseline",
    "parse_selector",
    "run_compare",
    "save_baseline",
]
