"""Formatting shared by the terminal and HTML renderers, so both show the same numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from canary.reports.model import PoolTest

SPARK_CHARS = "▁▂▃▄▅▆▇█"
#: At most this many marks per sparkline; longer series are averaged into buckets.
SPARK_WIDTH = 24

STATUS_COLOUR = {
    "regressed": "#c62828",
    "inconclusive": "#b26a00",
    "ok": "#2e7d32",
    "no data": "#757575",
}
STATUS_STYLE = {
    "regressed": "bold white on red",
    "inconclusive": "black on yellow",
    "ok": "green",
    "no data": "dim",
}


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """Unicode bars from 0 to the series' own maximum (all-zero series stay flat)."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [
            _mean(values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
            for i in range(width)
        ]
    top = max(values)
    if top <= 0:
        return SPARK_CHARS[0] * len(values)
    last = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[min(last, round(v / top * last))] for v in values)


POOL_COLUMNS = ("pool", "metric", "rate", "rest of fleet", "difference", "p (Holm)", "")


def pool_rows(pools: Sequence[PoolTest]) -> list[tuple[PoolTest, list[str]]]:
    """The pool tests worth a row (something flagged on either side for that pool label and
    metric), each with its cells in `POOL_COLUMNS` order."""
    moved = {(p.label, p.metric) for p in pools if p.k or p.rest_k}
    return [
        (
            p,
            [
                f"{p.label}={p.value}",
                p.metric,
                f"{p.rate:.1%} ({p.k}/{p.n})",
                f"{p.rest_rate:.1%} ({p.rest_k}/{p.rest_n})",
                signed_pct(p.effect),
                num(p.p_holm),
                "DIFFERENT" if p.different else "",
            ],
        )
        for p in pools
        if (p.label, p.metric) in moved
    ]


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def signed_pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:+.{digits}%}"


def num(value: float | None) -> str:
    """Short form of a p-value or logprob: 3 significant digits, scientific when tiny."""
    if value is None or value != value:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.3g}" if abs(value) >= 1e-3 else f"{value:.1e}"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def detail_lines(metric: str, detail: Mapping[str, Any]) -> list[str]:
    """The facts of an evidence sample as sentences (both renderers print these), as the
    detector that declares ``metric`` words them; ``key: value`` lines otherwise."""
    if not detail:
        return []
    from canary.detectors import declared_metrics

    declared = declared_metrics().get(metric)
    lines = declared.explain.lines if declared is not None else None
    if lines is not None:
        return lines(detail)
    return [f"{k}: {v}" for k, v in detail.items()]
