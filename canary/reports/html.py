"""The report as ONE self-contained HTML file: no network at view time, model output inert.

Model output is untrusted, and so is anything else read from the store. Every string goes
through `canary.sanitize.printable` (control and bidi characters become visible escapes such as
``\\u202e``, secrets are scrubbed) and then `html.escape`; plot data travels as ASCII-only JSON
inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as
``\\u003c``-style escapes, so no data can close the element, open a comment, or put a raw
control character in the page; and a Content-Security-Policy allows only the page's own scripts,
by hash, and no network at all: even if a string slipped through unescaped, the browser would
neither run it nor fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any

from canary.reports.format import (
    POOL_COLUMNS,
    STATUS_COLOUR,
    detail_lines,
    pct,
    pool_rows,
    signed_pct,
    sparkline,
)
from canary.reports.model import EvidenceSample, Report
from canary.reports.rows import (
    ALERT_COLUMNS,
    IMPACT_COLUMNS,
    SERVED_COLUMNS,
    alert_tables,
    impact_rows,
    labels_text,
    served_rows,
)
from canary.sanitize import printable

_MARK = {"regressed": "✗", "inconclusive": "?", "ok": "✓", "no data": "·"}

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212121}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #ddd;padding:4px 8px;
vertical-align:top;text-align:left} th{background:#f5f5f5}
td.cell{white-space:nowrap;color:#fff} td.cell .spark{font-size:15px;letter-spacing:-1px}
.meta{color:#616161} .num{text-align:right;font-variant-numeric:tabular-nums}
pre.sample{white-space:pre-wrap;word-break:break-word;background:#fafafa;border:1px solid #ddd;
padding:8px;margin:4px 0} mark{background:#ffcdd2;color:#b71c1c;font-weight:bold;
outline:1px solid #c62828} .different{color:#c62828;font-weight:bold}
#js-errors{background:#ffebee;color:#b71c1c;padding:8px;margin-bottom:12px}
"""

_ERROR_HOOK = """window.addEventListener('error', function (e) {
  var box = document.getElementById('js-errors');
  if (!box) { return; }
  box.hidden = false;
  var line = document.createElement('div');
  line.textContent = 'report script error: ' + e.message;
  box.appendChild(line);
});"""

_BOOT = """(function () {
  var specs = JSON.parse(document.getElementById('plot-data').textContent);
  specs.forEach(function (s) {
    Plotly.newPlot(s.id, s.figure.data, s.figure.layout, {displaylogo: false, responsive: true});
  });
  document.body.setAttribute('data-plots-ready', String(specs.length));
})();"""


def render_html(report: Report) -> str:
    """The whole report as one HTML document (plotly.js inlined, a few MB)."""
    from plotly.offline import get_plotlyjs

    from canary.reports.plots import figure_specs

    specs = figure_specs(report)
    scripts = [_ERROR_HOOK, get_plotlyjs(), _BOOT]
    csp = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(f"'sha256-{_digest(s)}'" for s in scripts),
            "style-src 'unsafe-inline'",
            "img-src data:",
            "font-src data:",
        ]
    )
    title = f"canary report {report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC"
    body = [
        '<div id="js-errors" hidden></div>',
        f"<script>{scripts[0]}</script>",
        f"<script>{scripts[1]}</script>",
        f"<h1>{_h(title)}</h1>",
        _meta(report),
        _grid(report),
        "<h2>Rates per round</h2>",
        *(f'<div id="{s["id"]}" class="plot"></div>' for s in specs),
        _alerts(report),
        _pools(report),
        _served(report),
        _impact(report),
        _evidence(report),
        _changes(report),
        *(f'<p class="meta">note: {_h(n)}</p>' for n in report.notes),
        f'<script type="application/json" id="plot-data">{script_json(specs)}</script>',
        f"<script>{scripts[2]}</script>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp)}">'
        f"<title>{_h(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def script_json(data: Any) -> str:
    """JSON that is inert inside a ``<script>`` element: no ``</script>``, no ``<!--``.

    ASCII only: every other character (a bidi control, a lone surrogate, U+2028) travels as a
    ``\\uXXXX`` escape, which JSON.parse turns back into the same string.
    """
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    for raw, safe in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, safe)
    return text


def highlighted(sample: EvidenceSample) -> str:
    """The sample's text, escaped, with each located span in a ``<mark>``."""
    out, at = [], 0
    for span in sorted(sample.spans, key=lambda s: (s.start, s.end)):
        if span.start < at or span.end <= span.start:
            continue  # overlapping spans: the first one wins
        out.append(_h(sample.text[at : span.start]))
        out.append(
            f'<mark data-start="{span.start}" data-end="{span.end}" title="{_h(span.note)}">'
            f"{_h(sample.text[span.start : span.end])}</mark>"
        )
        at = span.end
    out.append(_h(sample.text[at:]))
    return "".join(out)


def _h(value: object) -> str:
    """Stored text as inert HTML text: `printable` first, so a bidi override or an escape
    sequence shows as ``\\u202e`` instead of reordering the page, then HTML-escaped."""
    return escape(printable(value))


def _digest(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def _meta(report: Report) -> str:
    selection = ",".join(f"{k}={v}" for k, v in sorted(report.selection.items())) or "all"
    return (
        f'<p class="meta">selection {_h(selection)} · reference {_h(report.reference)}'
        f" · grouped by {_h(','.join(report.by) or 'nothing')}"
        f" · generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC</p>"
    )


def _grid(report: Report) -> str:
    if not report.cells:
        return "<p>No cohort has results in the window.</p>"
    head = "".join(f"<th>{_h(m)}</th>" for m in report.metrics)
    rows = []
    for cohort in report.cohorts:
        tds = [f"<th>{_h(cohort.key)}</th>"]
        for metric in report.metrics:
            cell = report.cell(cohort.key, metric)
            if cell is None:
                tds.append("<td>·</td>")
                continue
            effect = f" ({signed_pct(cell.effect)})" if cell.effect is not None else ""
            tds.append(
                f'<td class="cell" data-status="{_h(cell.status)}" '
                f'style="background:{STATUS_COLOUR[cell.status]}" title="{_h(cell.reason)}">'
                f"{_MARK[cell.status]} {_h(cell.status)}<br>{pct(cell.rate)}{effect}<br>"
                f'<span class="spark">{sparkline([p.rate for p in cell.trend])}</span></td>'
            )
        rows.append("<tr>" + "".join(tds) + "</tr>")
    reasons = "".join(
        f"<li><b>{_h(c.cohort)} / {_h(c.metric)}</b>: {_h(c.reason)}</li>"
        for c in report.cells
        if c.status in ("regressed", "inconclusive")
    )
    return (
        f"<h2>Cohort × metric</h2><table><tr><th>cohort</th>{head}</tr>{''.join(rows)}</table>"
        + (f"<ul>{reasons}</ul>" if reasons else "")
    )


def _alerts(report: Report) -> str:
    if not report.alerts:
        return "<h2>Alerts</h2><p>No alerts in the window.</p>"
    parts = [f"<h2>Alerts ({len(report.alerts)}), grouped as paged</h2>"]
    head = "".join(f"<th>{h}</th>" for h in ALERT_COLUMNS)
    for group, rows in alert_tables(report):
        c = group.change
        if c is not None:
            parts.append(
                f"<h3>change {_h(c.change_id)} ({_h(c.kind)}, {_h(labels_text(c.labels))}, "
                f"{c.at:%Y-%m-%d %H:%M:%S} UTC) {_h(c.note)}</h3>"
            )
        else:
            parts.append("<h3>no attributed change</h3>")
        body = "".join(_row(cells) for _, cells in rows)
        parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "".join(parts)


def _pools(report: Report) -> str:
    rows = [
        ('<tr class="different">' if p.different else "<tr>")
        + "".join(f"<td>{_h(x)}</td>" for x in cells)
        + "</tr>"
        for p, cells in pool_rows(report.pools)
    ]
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in POOL_COLUMNS)
    return (
        "<h2>Each pool against the rest of the fleet</h2>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
    )


def _served(report: Report) -> str:
    """The identity verdict per pool, as `canary identity` would say it from stored data."""
    if not report.served:
        return ""
    rows = [
        ('<tr class="different">' if row.verdict == "different" else "<tr>")
        + "".join(f"<td>{_h(x)}</td>" for x in cells)
        + "</tr>"
        for row, cells in zip(report.served, served_rows(report.served), strict=True)
    ]
    head = "".join(f"<th>{_h(h)}</th>" for h in SERVED_COLUMNS)
    margin = report.served[0].margin
    return (
        "<h2>Served model: is each pool serving the reference model?</h2>"
        f'<p class="meta">mean next-token KL from the reference over greedy probes, tested '
        f"against a margin of {margin:g} nats/token</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
    )


def _impact(report: Report) -> str:
    if not report.impact:
        return ""
    head = "".join(f"<th>{h}</th>" for h in IMPACT_COLUMNS)
    body = "".join(_row(cells) for cells in impact_rows(report.impact))
    return f"<h2>Impact: requests vs sessions</h2><table><tr>{head}</tr>{body}</table>"


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<td>{_h(x)}</td>" for x in cells) + "</tr>"


def _evidence(report: Report) -> str:
    if not report.evidence:
        return ""
    parts = ["<h2>Evidence</h2>"]
    for s in report.evidence:
        located = "".join(
            f"<li>[{sp.start}:{sp.end}] <code>{_h(repr(s.text[sp.start : sp.end]))}</code>: "
            f"{_h(sp.note)}</li>"
            for sp in s.spans
        )
        facts = "".join(f"<li>{_h(line)}</li>" for line in detail_lines(s.metric, s.detail))
        parts.append(
            f'<div class="evidence" data-result="{s.result_id}">'
            f"<h3>{_h(s.metric)} · {_h(s.cohort)} · probe {_h(s.probe_id)} · "
            f'result {s.result_id} <span class="meta">(canary show {s.result_id}; '
            f"from {_h(s.source)})</span></h3>"
            f'<pre class="sample">{highlighted(s)}</pre><ul>{located}{facts}</ul></div>'
        )
    return "".join(parts)


def _changes(report: Report) -> str:
    if not report.changes:
        return ""
    items = "".join(
        f"<li>{c.at:%Y-%m-%d %H:%M:%S} UTC <b>{_h(c.change_id)}</b> {_h(c.kind)} "
        f"{_h(labels_text(c.labels))} "
        f"{_h(c.note)}</li>"
        for c in report.changes
    )
    return f"<h2>Changes in the window</h2><ul>{items}</ul>"
