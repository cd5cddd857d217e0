"""Complexity checks that hold on a busy machine: a growth ratio, never a wall-clock bound.

A test that says "1 MB in under 5 s" fails when another job has the cores. What such a test
protects is the complexity — a 1 MB output must not cost quadratic work — so these helpers
compare the CPU time of one input against one ``k`` times larger instead. The speed goals
themselves live in ``benchmarks/``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Allowed cost growth relative to linear. Sorting (n log n) and cache effects measured up to
#: 2x linear for an 8x larger input (the entropy detector); quadratic work is ``k`` times
#: linear, so with k = 8 it is twice over this bound.
SLACK = 4.0


def _cpu_seconds(fn: Callable[[T], object], arg: T) -> float:
    gc.disable()  # a collection landing in one run but not the other is noise, not cost
    try:
        # CPU time of this process: other processes on a busy machine do not count.
        started = time.process_time()
        fn(arg)
        return time.process_time() - started
    finally:
        gc.enable()


def growth(fn: Callable[[T], object], small: T, large: T, *, repeats: int = 2) -> float:
    """CPU time of ``fn(large)`` over ``fn(small)``, each the best of interleaved runs."""
    best_small = best_large = float("inf")
    for _ in range(repeats):
        best_small = min(best_small, _cpu_seconds(fn, small))
        best_large = min(best_large, _cpu_seconds(fn, large))
    return best_large / max(best_small, 1e-6)


def assert_linear(
    fn: Callable[[T], object], small: T, large: T, k: float, *, repeats: int = 2
) -> None:
    """Fail when ``fn`` grows much faster than linearly from ``small`` to ``large`` (k x)."""
    ratio = growth(fn, small, large, repeats=repeats)
    assert ratio < SLACK * k, (
        f"{k:g}x the input cost {ratio:.1f}x the CPU time: worse than linear "
        f"(allowed {SLACK * k:g}x); see benchmarks/ for the speed itself"
    )
