"""What `--before` and `--after` name: a baseline, a run, a window, a change, or labels.

Grammar (one selector per option):

- ``baseline:NAME`` (or a bare NAME of a stored baseline)
- ``run:ID`` (or a bare integer)
- ``SINCE..UNTIL``: a time window, each end a duration ago (``48h``) or an ISO time
- ``change:ID``: the ``--window`` before the change (for ``--before``) or after it (``--after``),
  restricted to the cohorts the change touches
- ``label=value[,label=value…][@SINCE..UNTIL]``: cohorts by label, in the window given after
  ``@`` (default: the last ``--window``)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from canary.config.selection import parse_label_filters
from canary.errors import ConfigError
from canary.records import ResultFilter
from canary.timespec import parse_time

Role = Literal["before", "after"]


@dataclass(frozen=True)
class Selector:
    """A parsed selector: either stored results (`filter`) or a stored baseline (`baseline`)."""

    text: str
    filter: ResultFilter | None = None
    baseline: str | None = None
    change: str | None = None


def parse_selector(
    text: str,
    role: Role,
    *,
    window: timedelta = timedelta(hours=24),
    now: datetime | None = None,
) -> Selector:
    """Parse ``text``; ``change:`` selectors are resolved by `resolve_change` afterwards."""
    now = now or datetime.now(UTC)
    raw = text.strip()
    if not raw:
        raise ConfigError(f"--{role} is empty; give a baseline, run:ID, a window or labels")
    prefix, sep, rest = raw.partition(":")
    if sep and prefix == "baseline":
        return Selector(raw, baseline=rest)
    if sep and prefix == "run":
        return Selector(raw, filter=ResultFilter(run_ids=_run_ids(rest, role)))
    if sep and prefix == "change":
        return Selector(raw, change=rest)
    if raw.isascii() and raw.isdigit():
        return Selector(raw, filter=ResultFilter(run_ids=(int(raw),)))
    if "=" in raw:
        labels_text, at, window_text = raw.partition("@")
        labels = parse_label_filters([p for p in labels_text.split(",") if p.strip()])
        since, until = _window(window_text, now) if at else (now - window, None)
        return Selector(raw, filter=ResultFilter(labels=labels, since=since, until=until))
    if ".." in raw:
        since, until = _window(raw, now)
        return Selector(raw, filter=ResultFilter(since=since, until=until))
    return Selector(raw, baseline=raw)


def change_window(
    role: Role, at: datetime, labels: dict[str, str], window: timedelta
) -> ResultFilter:
    """The results a change selector covers: the window before or after the change."""
    if role == "before":
        return ResultFilter(labels=labels, since=at - window, until=at)
    return ResultFilter(labels=labels, since=at, until=at + window)


def _run_ids(text: str, role: Role) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    # isdigit alone would take "²" or "١"; ids are ASCII decimal integers.
    bad = [part for part in parts if not (part.isascii() and part.isdigit())]
    if bad:
        raise ConfigError(
            f"--{role}: run ids are integers: run:{text}; write e.g. run:12 or run:12,13"
        )
    if not parts:
        raise ConfigError(f"--{role} run: needs an id, e.g. run:12")
    return tuple(int(part) for part in parts)


def _window(text: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    start, sep, end = text.partition("..")
    if not sep:
        raise ConfigError(f"window {text!r}: write SINCE..UNTIL, e.g. 48h..24h or 2026-11-20..")
    since = parse_time(start, now=now) if start.strip() else None
    until = parse_time(end, now=now) if end.strip() else None
    if since and until and since >= until:
        raise ConfigError(f"window {text!r} ends before it starts")
    return since, until
