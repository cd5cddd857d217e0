"""Wording shared by the sinks, so an alert reads the same in a terminal, Slack and Alertmanager.

The helpers take one alert of a payload (`Alert.to_dict()` plus ``samples``) and tolerate
missing keys: a payload written by an older or newer canary must still render.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Evidence result ids named in a notification, per alert.
EVIDENCE_SHOWN = 3


def pct(value: Any) -> str:
    """``0.123`` → ``12.3%``; anything that is not a number → ``?``."""
    return f"{value:.1%}" if isinstance(value, int | float) else "?"


def rate_text(alert: Mapping[str, Any]) -> str:
    """``12.0% (12/100) vs baseline 2.0%``."""
    k, n = alert.get("k"), alert.get("n")
    counts = f" ({k}/{n})" if isinstance(k, int) and isinstance(n, int) else ""
    return f"{pct(alert.get('rate'))}{counts} vs baseline {pct(alert.get('baseline_rate'))}"


def impact_text(alert: Mapping[str, Any]) -> str | None:
    """``sessions affected 30.0% (12/40)`` when the alert carries session impact, else None."""
    impact = alert.get("impact")
    if not isinstance(impact, Mapping) or "session_rate" not in impact:
        return None
    flagged, total = impact.get("flagged_sessions"), impact.get("sessions")
    counts = f" ({flagged}/{total})" if flagged is not None and total is not None else ""
    return f"sessions affected {pct(impact.get('session_rate'))}{counts}"


def evidence_commands(alert: Mapping[str, Any], limit: int = EVIDENCE_SHOWN) -> list[str]:
    """``canary show ID`` for the first evidence results: what to run to see a bad output."""
    ids = alert.get("evidence_ids") or []
    return [f"canary show {int(i)}" for i in ids[:limit]]


def alert_status(payload: Mapping[str, Any], alert: Mapping[str, Any]) -> str:
    """The alert's own status, except that a resolved notification resolves all of its alerts."""
    if payload.get("status") == "resolved":
        return "resolved"
    return str(alert.get("status") or payload.get("status") or "firing")


def alert_title(alert: Mapping[str, Any]) -> str:
    """``refusal_rate on endpoint=gpu-a,pool=gpu``."""
    return f"{alert.get('metric', '?')} on {alert.get('cohort') or '(whole fleet)'}"


def alert_line(payload: Mapping[str, Any], alert: Mapping[str, Any]) -> str:
    """One line that says what regressed, how much, why (change) and where to look."""
    parts = [f"[{alert_status(payload, alert).upper()}] {alert_title(alert)}: {rate_text(alert)}"]
    impact = impact_text(alert)
    if impact:
        parts.append(impact)
    if alert.get("change_id"):
        parts.append(f"change {alert['change_id']}")
    evidence = evidence_commands(alert)
    if evidence:
        parts.append("evidence: " + ", ".join(evidence))
    return "; ".join(parts)


def one_line(text: str, limit: int = 500) -> str:
    """`text` on one line, cut to `limit` characters (errors and excerpts are stored this way)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
