"""Sink checks: each sink has what it needs to send (its environment), and nothing is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canary.doctor._check import Check, failure
from canary.errors import CanaryError

if TYPE_CHECKING:
    from canary.daemon.config import DaemonConfig


def check_sinks(daemon: DaemonConfig) -> list[Check]:
    """`Sink.check()` of every configured sink: missing variables are named, never their values."""
    from canary.alerts.sinks import build_sinks

    if not daemon.sinks:
        if daemon.alerts is None:
            return []
        detail = "alerts are stored but sent nowhere (no sinks)"
        return [Check("sinks", "warn", detail, "add a sink under 'sinks:' to be told", "sink")]
    try:
        sinks = build_sinks(daemon.sinks)
    except CanaryError as exc:
        return [failure("sinks", exc, "sink")]
    checks: list[Check] = []
    for name, sink in sinks.items():
        try:
            sink.check()
        except CanaryError as exc:
            checks.append(failure(f"sink {name}", exc, "sink"))
        except Exception as exc:  # a third-party sink's check must not stop the doctor
            first_line = (str(exc).strip().splitlines() or [""])[0]
            detail = f"check() raised {type(exc).__name__}: {first_line}"
            fix = f"see the documentation of the {sink.type!r} sink"
            checks.append(Check(f"sink {name}", "fail", detail, fix, "sink"))
        else:
            checks.append(
                Check(f"sink {name}", "ok", f"{sink.type}: ready (nothing sent)", "", "sink")
            )
    return checks
