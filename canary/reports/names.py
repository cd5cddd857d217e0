"""Cohort names short enough for an 80-column terminal, and never cut.

Every row of a grid grouped by ``endpoint,load`` reads ``endpoint=…,load=…``: at 80 columns
that left ``endpoint=…`` and nothing of the value. So the labels go in the column header once,
a label every row shares (``load=probe``) is said once above the table, and each row shows only
its values. Renderers wrap what is still too long (rich ``overflow="fold"``), never ellipsise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The value shown for a label a cohort does not carry (``cohort_key`` writes it empty).
MISSING = "-"


@dataclass(frozen=True)
class CohortColumn:
    """How a table names its cohorts: a header, the labels all share, a short name each."""

    header: str
    """``endpoint`` or ``endpoint,load``: the labels whose values the rows show."""
    shared: str
    """``load=probe``: labels with the same value in every row, said once ("" if none)."""
    names: dict[str, str]
    """Cohort key → what its row shows."""

    def name(self, key: str) -> str:
        return self.names.get(key, key)


def cohort_column(keys: Sequence[str], by: Sequence[str]) -> CohortColumn:
    """Short names for cohort ``keys`` built by `cohort_key(labels, by)`; keys that are not
    (``all``, a paired ``a → b``) leave every name whole under the header ``cohort``."""
    split = {key: split_key(key, by) for key in keys}
    if not by or not keys or any(v is None for v in split.values()):
        return CohortColumn("cohort", "", {key: key for key in keys})
    values = {key: v for key, v in split.items() if v is not None}
    varying = [i for i in range(len(by)) if len({v[i] for v in values.values()}) > 1]
    if not varying:  # one row: nothing to factor out but the label names
        varying = list(range(len(by)))
    first = next(iter(values.values()))
    shared = ",".join(f"{by[i]}={first[i] or MISSING}" for i in range(len(by)) if i not in varying)
    return CohortColumn(
        header=",".join(by[i] for i in varying),
        shared=shared,
        names={key: ",".join(v[i] or MISSING for i in varying) for key, v in values.items()},
    )


def split_key(key: str, by: Sequence[str]) -> list[str] | None:
    """The label values of ``key`` (``endpoint=a,load=b`` for ``by=("endpoint", "load")``), or
    None when ``key`` is not such a key. Values may hold ``,`` or ``=``: the known label names
    split the key, and the values must rebuild it exactly."""
    if not by or not key.startswith(f"{by[0]}="):
        return None
    rest = key[len(by[0]) + 1 :]
    values: list[str] = []
    for label in by[1:]:
        marker = f",{label}="
        at = rest.find(marker)
        if at < 0:
            return None
        values.append(rest[:at])
        rest = rest[at + len(marker) :]
    values.append(rest)
    rebuilt = ",".join(f"{k}={v}" for k, v in zip(by, values, strict=True))
    return values if rebuilt == key else None
