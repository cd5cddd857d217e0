"""Which recorded change an alert is attributed to: the change point that best explains it.

Candidates are the changes that touch the cohort (every label of the change matches; a change
with no labels touches the whole fleet) and took effect between ``window`` before the onset and
the firing. Each candidate splits the cohort's history at its time; the one whose "after" part
has the largest likelihood ratio against the baseline rate (the GLR statistic,
``n · KL(p̂ ‖ p0)``) is the maximum-likelihood change point among the recorded changes. A later
unrelated change leaves out flagged outputs and an earlier one dilutes them with healthy ones,
so both score lower than the change the regression followed.

A change says it rolls another back in its note (`rollback_of`): ``rollback of CHANGE-ID``,
``rolls back CHANGE-ID`` or ``reverts CHANGE-ID``. A rollback resolves the episode attributed to
the change it undoes (see `canary.alerts.lifecycle`), never another one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from canary.stats.sequential import bernoulli_kl


class _Change(Protocol):
    @property
    def change_id(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


_ROLLBACK = re.compile(r"\b(?:rollback\s+of|rolls?\s+back|reverts?)\s+([^\s,;]+)", re.I)


def rollback_of(note: str) -> str | None:
    """The change id a change's note says it rolls back, or None (a change has no field for
    it, so the note carries it: ``rollback of deploy-7``)."""
    match = _ROLLBACK.search(note)
    return match.group(1).rstrip(".") if match else None


class AttributionReader(Protocol):
    """What attribution reads: the store's alert transaction provides it."""

    def changes_between(self, since: datetime, until: datetime) -> Sequence[_Change]: ...

    def counts_since(
        self, cohort_id: int, metric: str, since: datetime, until: datetime
    ) -> tuple[int, int]: ...


def change_touches(change_labels: Mapping[str, str], cohort_labels: Mapping[str, str]) -> bool:
    """A change touches a cohort when each of its labels matches (none: the whole fleet).

    A front door serves from several pools and carries no ``pool`` label; its ``pools`` label
    (``gpu-fp32+tpu-bf16``) names them, so a change to one of its pools touches it too.
    """
    for key, value in change_labels.items():
        if cohort_labels.get(key) == value:
            continue
        behind = cohort_labels.get("pools", "").split("+")
        if key == "pool" and "pool" not in cohort_labels and value in behind:
            continue
        return False
    return True


def attribute_change(
    reader: AttributionReader,
    *,
    cohort_id: int,
    labels: Mapping[str, str],
    metric: str,
    p0: float,
    onset: datetime,
    fired_at: datetime,
    window: timedelta,
) -> tuple[str, datetime] | None:
    """The id and time of the recorded change that best explains the regression, or None."""
    candidates = [
        (change.change_id, change.at)
        for change in reader.changes_between(onset - window, fired_at)
        if change_touches(change.labels, labels)
    ]
    best: tuple[float, datetime, str] | None = None
    for change_id, at in candidates:
        k, n = reader.counts_since(cohort_id, metric, at, fired_at)
        glr = n * bernoulli_kl(k / n, p0) if n and k / n > p0 else 0.0
        if glr > 0 and (best is None or (glr, at) > (best[0], best[1])):
            best = (glr, at, change_id)
    return (best[2], best[1]) if best else None
