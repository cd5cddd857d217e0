"""Which suites a comparison is of: one per side and the same on both, unless `--suite` names them.

A window of the fleet holds every suite the daemon runs (topk, a trap suite, smoke), and their
rates mean different things: pooled, a comparison counts probes that measure something else
(a 24 h window mixed three suites: n=107 instead of 69). So a side holding results of more than
one suite is refused unless suites are named, and a baseline is compared on the suites it was
captured for, never against results of another suite.
"""

from __future__ import annotations

from collections.abc import Sequence

from canary.compare.aggregate import Aggregate
from canary.compare.gate import NotComparable
from canary.errors import ConfigError
from canary.store import Store


def named_suites(values: Sequence[str]) -> tuple[str, ...]:
    """``--suite a --suite b,c`` as ``("a", "b", "c")``: stripped, empty parts and repeats
    dropped, in the order given."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if name and name not in out:
                out.append(name)
    return tuple(out)


def check_known(store: Store, suites: Sequence[str]) -> None:
    """A named suite that was never stored is a typo, not "no data": say which exist."""
    from canary.store.filters import suite_names

    if not suites:
        return
    known = suite_names(store)
    unknown = [s for s in suites if s not in known]
    if unknown:
        raise ConfigError(
            f"--suite {','.join(unknown)}: no results of such a suite are stored "
            f"(known: {', '.join(known) or 'none yet'}); list runs with `canary runs`"
        )


def baseline_scope(name: str, baseline: Aggregate, requested: Sequence[str]) -> tuple[str, ...]:
    """The suites to compare against baseline ``name``: the ones it was captured for (else the
    ones it holds); `NotComparable` when ``requested`` names others."""
    own = baseline.suites or baseline.suite_names
    if not requested and not baseline.suites:
        refuse_mixed(f"baseline {name!r}", baseline, "or re-capture it with --suite NAME")
    if requested and set(requested) != set(own):
        raise NotComparable(
            f"baseline {name!r} is of suite {_names(own)}, the comparison of suite "
            f"{_names(requested)}; capture a baseline with --suite {','.join(requested)}"
        )
    return tuple(requested) or tuple(own)


def check_sides(before: Aggregate, after: Aggregate, named: Sequence[str]) -> None:
    """Refuse a side that mixes suites (unless suites were ``named``: then the user chose the
    mix) and two sides of different suites."""
    if named:
        return
    for role, side in (("before", before), ("after", after)):
        refuse_mixed(f"--{role} {side.description or 'side'}", side)
    if before.suite_names and after.suite_names and before.suite_names != after.suite_names:
        raise NotComparable(
            f"the sides are of different suites: before {_counted(before)}, after "
            f"{_counted(after)}; compare results of one suite (--suite NAME)"
        )


def refuse_mixed(what: str, side: Aggregate, also: str = "") -> None:
    """`ConfigError` (exit 3: fixed by an argument) when ``side`` holds several suites."""
    if len(side.suite_names) > 1:
        raise ConfigError(
            f"{what} mixes suites: {_counted(side)}; pass --suite NAME to keep one"
            + (f", {also}" if also else "")
        )


def _counted(side: Aggregate) -> str:
    """``topk (69 results), smoke (18 results)``, largest first; names alone without counts."""
    if not side.suite_results:
        return ", ".join(side.suite_names)
    ranked = sorted(side.suite_results.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} ({n} results)" for name, n in ranked)


def _names(suites: Sequence[str]) -> str:
    return ",".join(suites) or "(none)"
