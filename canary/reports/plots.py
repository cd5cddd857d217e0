"""Plotly figures of the report: one time series per metric, a line per cohort, with the
window's recorded changes as vertical markers, so a step that starts at a deploy is plain.

Figures are built here and embedded by `canary.reports.html` as data; plotly is imported only
when HTML is asked for.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from canary.reports.format import STATUS_COLOUR
from canary.reports.model import Report
from canary.sanitize import one_line

_STATUS_RANK = {"regressed": 0, "inconclusive": 1, "ok": 2, "no data": 3}


def figure_specs(report: Report) -> list[dict[str, Any]]:
    """``[{"id", "metric", "status", "figure"}]``, worst metric first; ``figure`` is the
    plotly JSON (data and layout) as a dict."""
    import plotly.graph_objects as go

    specs: list[dict[str, Any]] = []
    for metric in report.metrics:
        cells = [c for c in report.cells if c.metric == metric and c.trend]
        if not cells:
            continue
        worst = min((c.status for c in cells), key=lambda s: _STATUS_RANK[s])
        fig = go.Figure()
        for cell in cells:
            fig.add_trace(
                go.Scatter(
                    x=[_plot_time(p.at) for p in cell.trend],
                    y=[p.rate for p in cell.trend],
                    customdata=[[p.k, p.n, p.run_id] for p in cell.trend],
                    mode="lines+markers",
                    # Plotly reads a subset of HTML in names; escaped, a label shows as text.
                    name=_text(f"{cell.cohort} ({cell.status})"),
                    hovertemplate="%{y:.2%} (%{customdata[0]}/%{customdata[1]}), "
                    "run %{customdata[2]}<extra>%{fullData.name}</extra>",
                    line={"width": 3 if cell.status == "regressed" else 1.5},
                )
            )
        shapes, notes = [], []
        for change in report.changes:
            at = _plot_time(change.at)
            shapes.append(
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": at,
                    "x1": at,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": "#6a1b9a", "dash": "dot", "width": 1.5},
                }
            )
            notes.append(
                {
                    "x": at,
                    "y": 1,
                    "xref": "x",
                    "yref": "paper",
                    "yanchor": "bottom",
                    "showarrow": False,
                    "text": _text(f"{change.change_id} ({change.kind})"),
                    "font": {"color": "#6a1b9a", "size": 11},
                }
            )
        fig.update_layout(
            title={
                "text": _text(f"{metric}: {worst}"),
                "font": {"color": STATUS_COLOUR[worst]},
            },
            template="none",
            height=340,
            margin={"l": 60, "r": 20, "t": 60, "b": 50},
            xaxis={"title": {"text": "round start (UTC)"}, "type": "date"},
            yaxis={"title": {"text": "flagged share"}, "tickformat": ".0%", "rangemode": "tozero"},
            legend={"orientation": "h", "y": -0.25},
            shapes=shapes,
            annotations=notes,
        )
        specs.append(
            {
                "id": f"plot-{len(specs)}",
                "metric": metric,
                "status": worst,
                "figure": json.loads(fig.to_json()),
            }
        )
    specs.sort(key=lambda s: _STATUS_RANK[s["status"]])
    return specs


def _text(value: str) -> str:
    """Stored text as a plotly label: one inert line (bidi and control characters visible),
    HTML-escaped because plotly.js reads a subset of HTML in labels."""
    return html.escape(one_line(value))


def _plot_time(at: datetime) -> str:
    """UTC without an offset: plotly.js reads ``+00:00`` suffixes inconsistently."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
