"""The reference as `compare` and `report` see it: the note when the selected results were
never judged against one, and `compare --reference DIR` re-judging the selected sides.

Kept apart from the command modules so each of them needs only a one-line call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canary.records import ResultFilter
    from canary.store import Store


def selector_filters(
    store: Store, selectors: Sequence[str], window: timedelta, suites: Sequence[str] = ()
) -> list[ResultFilter]:
    """The stored results the ``selectors`` of `compare` name (baselines name none)."""
    from canary.compare.selectors import change_window, parse_selector
    from canary.store.changes import get_change

    now = datetime.now(UTC)
    out: list[ResultFilter] = []
    for role, text in zip(("before", "after"), selectors, strict=False):
        selector = parse_selector(text, role, window=window, now=now)  # type: ignore[arg-type]
        filt = selector.filter
        if selector.change is not None:
            change = get_change(store, selector.change)
            filt = change_window(role, change.at, change.labels, window)  # type: ignore[arg-type]
        if filt is not None:
            out.append(replace(filt, suites=tuple(suites)) if suites else filt)
    return out


def missing_reference_notes(store: Store, filters: Sequence[ResultFilter]) -> list[str]:
    """One note per selection holding reference-kind results with no reference scores."""
    from canary.scoring import missing_reference_note

    notes = [missing_reference_note(store, filt) for filt in filters]
    return list(dict.fromkeys(n for n in notes if n))


def compare_notes(
    store: Store,
    before: str,
    after: str,
    window: timedelta,
    suites: Sequence[str] = (),
    reference: str | None = None,
) -> list[str]:
    """For `compare`: with ``reference`` (`--reference DIR`, else $CANARY_REFERENCE_MODEL), the
    reference-kind results of the selected sides are scored against it first, so both sides
    are judged by one model; then the notes of sides still without reference scores."""
    from canary.config.reference import resolve_reference

    filters = selector_filters(store, (before, after), window, suites)
    judge = resolve_reference(reference)
    if judge is not None:
        from canary.scoring import judge_against_reference

        for filt in filters:
            judge_against_reference(store, judge, filt)
    return missing_reference_notes(store, filters)
