"""Bin indexes for building rollups: `bin_index`'s exact answer, without SQLite's Python UDFs.

On SQLite `floor` and `ln` are Python functions (`canary.store.engine`), called several times
per row by `bin_index`'s CASE: most of a rollup build's time on a big run. Here the same index
is computed with SQLite's own arithmetic. Linear bins: ``CAST(q AS INTEGER)`` truncates where
``floor(q)`` floors, and the two differ only for negative ``q``, which both clamp to bin 0
(and a ``q`` past the 64-bit range saturates, which clamps to the last bin, where the UDF's
huge integer made SQLite fail). Log bins: the index is the number of precomputed thresholds
at or below the value, each threshold found by bisecting on doubles with the very arithmetic
the UDFs do (`math.log`, then IEEE subtraction and division), so every value lands where
`bin_index` puts it. PostgreSQL has native `floor`/`ln`: `bin_index` as is.
"""

from __future__ import annotations

import math
import struct
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, literal

from canary.store.binning import Bins, bin_index


def rollup_bin_index(column: Any, bins: Bins, dialect: str) -> ColumnElement[Any]:
    """The bin index of ``column`` under ``bins``, exactly as `bin_index`, cheap on SQLite."""
    if dialect != "sqlite":
        return bin_index(column, bins)
    if bins.scale == "log":
        return _search(column, _log_thresholds(bins), 0, bins.bins - 1)
    width = (bins.hi - bins.lo) / bins.bins
    raw = cast((column - bins.lo) / width, Integer)
    return case((raw < 0, 0), (raw > bins.bins - 1, bins.bins - 1), else_=raw)


def _search(column: Any, edges: tuple[float, ...], lo: int, hi: int) -> ColumnElement[Any]:
    """Binary search as nested CASEs: the index in [lo, hi] of ``column``; ``edges[i - 1]``
    is the smallest value of bin ``i``."""
    if lo == hi:
        return literal(lo)
    mid = (lo + hi + 1) // 2
    above = _search(column, edges, mid, hi)
    below = _search(column, edges, lo, mid - 1)
    return case((column >= literal(edges[mid - 1]), above), else_=below)


def python_log_index(x: float, bins: Bins) -> int:
    """`bin_index` of a log-scale ``x`` as SQLite computes it through the engine's UDFs."""
    lo = math.log(bins.lo)
    width = (math.log(bins.hi) - lo) / bins.bins
    raw = math.floor((math.log(bins.lo if x < bins.lo else x) - lo) / width)
    return 0 if raw < 0 else bins.bins - 1 if raw > bins.bins - 1 else raw


@lru_cache(maxsize=64)
def _log_thresholds(bins: Bins) -> tuple[float, ...]:
    """The smallest double of each bin 1..bins−1 under `python_log_index` (monotone in x)."""
    top = _bits(math.inf) - 1  # the largest finite double
    edges: list[float] = []
    low = _bits(bins.lo)  # in bin 0, like everything below it
    for i in range(1, bins.bins):
        lo_bits, hi_bits = low, top
        while hi_bits - lo_bits > 1:  # invariant: index(lo_bits) < i <= index(hi_bits)
            mid = (lo_bits + hi_bits) // 2
            if python_log_index(_float(mid), bins) >= i:
                hi_bits = mid
            else:
                lo_bits = mid
        edges.append(_float(hi_bits))
        low = lo_bits
    return tuple(edges)


def _bits(x: float) -> int:
    """A positive double's bit pattern: ordered as the doubles are."""
    return int(struct.unpack("<q", struct.pack("<d", x))[0])


def _float(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", bits))[0])
