"""Named baselines: a captured aggregate of a healthy period, stored and exportable as JSON.

Exports (`baselines/NAME.json`) are meant for review in git: sorted keys, one cohort per block,
counts rather than raw outputs. Importing one restores it byte-for-byte comparable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from canary.compare.aggregate import Aggregate
from canary.errors import ConfigError, NotFoundError
from canary.records import ResultFilter
from canary.store import Store
from canary.store.baselines import (
    BaselineExists,
    StoredBaseline,
    all_baselines,
    baseline_names,
    get_baseline,
    insert_baseline,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Baseline:
    """A named aggregate of a healthy period: the `--before` side `compare` and alerts use."""

    name: str
    created_at: datetime
    selector: str
    aggregate: Aggregate
    note: str | None = None

    def summary(self) -> dict[str, Any]:
        """What `canary baseline list` shows: sizes and suite versions, not the counts."""
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "selector": self.selector,
            "by": list(self.aggregate.by),
            "cohorts": len(self.aggregate.cohorts),
            "results": self.aggregate.results,
            "suites": sorted(
                {
                    f"{s}@{','.join(sorted(v))}"
                    for c in self.aggregate.cohorts.values()
                    for s, v in c.suites.items()
                }
            ),
            "captured_for": list(self.aggregate.suites),
            "note": self.note,
        }

    def to_json(self) -> dict[str, Any]:
        """The export format (`import_baseline` reads it back)."""
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "selector": self.selector,
            "note": self.note,
            "aggregate": self.aggregate.to_json(),
        }


def save_baseline(
    store: Store,
    name: str,
    aggregate: Aggregate,
    selector: str,
    *,
    note: str | None = None,
    replace: bool = False,
) -> Baseline:
    """Store ``aggregate`` under ``name``; an existing name needs ``replace``."""
    if not _NAME.match(name):
        raise ConfigError(f"baseline name {name!r}: use letters, digits, '.', '_' or '-'")
    if not aggregate.cohorts or aggregate.results == 0:
        raise ConfigError(
            f"baseline {name!r} would be empty: no results match {selector!r}; "
            "check the selector with `canary runs`"
        )
    try:
        created = insert_baseline(
            store, name, selector, aggregate.to_json(), note=note, replace=replace
        )
    except BaselineExists:
        raise ConfigError(f"baseline {name!r} exists; pass --force to replace it") from None
    return Baseline(name, created, selector, aggregate, note)


def capture_baseline(
    store: Store,
    name: str,
    filt: ResultFilter,
    by: Sequence[str],
    *,
    note: str | None = None,
    replace: bool = False,
) -> Baseline:
    """Aggregate the results ``filt`` selects per ``by`` cohort, in detail, and store it.

    The baseline keeps ``filt.suites``: `compare` takes the other side on those suites only.
    One of every suite (what the daemon's alerts monitor against) is allowed, but `compare`
    refuses it as a side that mixes suites (see `canary.compare.suites`)."""
    from canary.compare.aggregate import aggregate
    from canary.stats import DEFAULT_POLICIES

    summary = aggregate(store, filt, by, DEFAULT_POLICIES, detail=True)
    return save_baseline(store, name, summary, filt.describe(), note=note, replace=replace)


def load_baseline(store: Store, name: str) -> Baseline:
    """The baseline named ``name``; a missing name lists the known ones."""
    row = get_baseline(store, name)
    if row is None:
        known = ", ".join(baseline_names(store)) or "none yet"
        raise NotFoundError(
            f"no baseline named {name!r} (known: {known}); capture one with "
            "`canary baseline capture`"
        )
    return _baseline(row)


def list_baselines(store: Store) -> list[Baseline]:
    """Every stored baseline, oldest first, aggregates parsed (what `canary baseline list`
    shows); to pick one by name, `baseline_names` reads no payload."""
    return [_baseline(r) for r in all_baselines(store)]


def export_baseline(store: Store, name: str, path: Path) -> Path:
    """Write baseline ``name`` to ``path`` as sorted JSON, for review in git."""
    baseline = load_baseline(store, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(
        json.dumps(baseline.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    tmp.replace(path)  # never a half-written export
    return path


def import_baseline(
    store: Store, path: Path, *, name: str | None = None, replace: bool = False
) -> Baseline:
    """Store an `export_baseline` file (under ``name``, else the name it was exported as)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        aggregate = Aggregate.from_json(data["aggregate"])
        selector = str(data["selector"])
        note = data.get("note")
        stored_name = name or str(data["name"])
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a canary baseline export ({exc})") from None
    return save_baseline(store, stored_name, aggregate, selector, note=note, replace=replace)


def _baseline(row: StoredBaseline) -> Baseline:
    return Baseline(
        row.name, row.created_at, row.selector, Aggregate.from_json(row.payload), row.note
    )
