"""Rollups bin values with SQLite's own arithmetic instead of the engine's Python `floor`/`ln`;
every value must land in the bin `bin_index` gives it: edges, one ulp either side of them,
out of range, zero and negatives, on every declared scale, and with the builder's rows."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from sqlalchemy import Column, Float, Integer, MetaData, Table, insert, select

from canary.stats.summaries import summary_spec
from canary.store import open_store
from canary.store.binning import Bins, bin_index
from canary.store.rollups import rollup_spec
from canary.store.rollups.buckets import _log_thresholds, python_log_index, rollup_bin_index

DECLARED = {**rollup_spec(summary_spec()).bins, **rollup_spec(summary_spec()).latency}
EXTRA = {"odd": Bins(-3.0, 7.3, 37), "tiny_log": Bins(0.001, 2.0, 3, "log")}


def _values(bins: Bins) -> list[float]:
    rng = random.Random(7)
    out = [0.0, -0.0, -1.0, -1e15, 1e15, bins.lo, bins.hi, math.nextafter(bins.lo, -math.inf)]
    if bins.scale == "log":
        for edge in _log_thresholds(bins):
            out += [math.nextafter(edge, 0.0), edge, math.nextafter(edge, math.inf)]
        out += [math.exp(rng.uniform(math.log(bins.lo) - 2, math.log(bins.hi) + 2))
                for _ in range(500)]  # fmt: skip
    else:
        width = (bins.hi - bins.lo) / bins.bins
        for i in range(bins.bins + 1):
            edge = bins.lo + i * width
            out += [math.nextafter(edge, -math.inf), edge, math.nextafter(edge, math.inf)]
        out += [k / 100 for k in range(-10, 1000)]
        out += [rng.uniform(bins.lo - 1, bins.hi + 1) for _ in range(500)]
    return out


def _indexes(url: str, expression: Any, xs: list[float]) -> list[int]:
    table = Table("xs", MetaData(), Column("i", Integer, primary_key=True), Column("x", Float))
    engine = open_store(url).engine
    with engine.begin() as conn:
        table.drop(conn, checkfirst=True)
        table.create(conn)
        conn.execute(insert(table), [{"i": i, "x": x} for i, x in enumerate(xs)])
        rows = conn.execute(select(table.c.i, expression(table.c.x)).order_by(table.c.i))
        return [int(b) for _, b in rows]


@pytest.mark.parametrize("name", sorted({**DECLARED, **EXTRA}))
def test_sqlite_bins_equal_bin_index(sqlite_url: str, name: str) -> None:
    bins = {**DECLARED, **EXTRA}[name]
    xs = _values(bins)
    expected = _indexes(sqlite_url, lambda c: bin_index(c, bins), xs)
    got = _indexes(sqlite_url, lambda c: rollup_bin_index(c, bins, "sqlite"), xs)
    assert got == expected
    assert set(expected) >= {0, bins.bins - 1}
    if bins.scale == "log":
        assert [python_log_index(x, bins) for x in xs] == expected


def test_log_thresholds_are_each_bins_first_value() -> None:
    for bins in [b for b in {**DECLARED, **EXTRA}.values() if b.scale == "log"]:
        edges = _log_thresholds(bins)
        assert len(edges) == bins.bins - 1
        for i, edge in enumerate(edges, start=1):
            assert python_log_index(edge, bins) == i
            assert python_log_index(math.nextafter(edge, 0.0), bins) == i - 1


def test_values_past_the_integer_range_clamp_to_the_last_bin(sqlite_url: str) -> None:
    bins = Bins(0.0, 1.0, 100)
    got = _indexes(sqlite_url, lambda c: rollup_bin_index(c, bins, "sqlite"), [1e300, -1e300])
    assert got == [99, 0]
