"""Options shared by several commands, defined once, and the values they parse into.

Only typer at module level: every command module imports this one, and `canary --help` must
not pay for the config models, the store or the statistics (see `tests/test_architecture.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from canary.records import ResultFilter

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///path.db or postgresql://…); "
        "default $CANARY_DATABASE_URL, then the fleet file's database_url, then ./canary.db.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="From this time on: a duration ago (24h, 7d) or an ISO time."),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", help="Before this time: a duration ago (2h) or an ISO time."),
]
RunOption = Annotated[
    list[int] | None,
    typer.Option("--run", help="Only the results of this run (repeatable).", show_default=False),
]
FleetOption = Annotated[
    Path,
    typer.Option(
        "--fleet",
        "-f",
        help="Fleet config file (YAML, TOML or JSON).",
        envvar="CANARY_FLEET",
    ),
]
SelectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        "-s",
        help="Only endpoints whose cohort labels match label=value (repeatable, all must match).",
        show_default=False,
    ),
]
SuitesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--suite",
        help="Only results of this suite (repeatable, or comma-separated); needed when the "
        "selection holds several.",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    list[str] | None,
    typer.Option("--endpoint", "-e", help="Only this endpoint (repeatable).", show_default=False),
]
ReferenceOption = Annotated[
    str | None,
    typer.Option(
        "--reference",
        help="Reference model directory (or canary:tiny, the shipped model) for the topk, "
        "routing and sampling checks; overrides $CANARY_REFERENCE_MODEL and the config files' "
        "reference:.",
        show_default=False,
    ),
]

DEFAULT_FLEET = Path("canary.yaml")
#: Where `--since` starts a window when the command needs one and none was given.
DEFAULT_WINDOW = "24h"


def optional_time(text: str | None) -> datetime | None:
    """`--since`/`--until` as a time, or None when the option was not given."""
    from canary.timespec import parse_time

    return parse_time(text) if text else None


def suite_list(suite: Sequence[str] | None) -> tuple[str, ...]:
    """`--suite a --suite b,c` as ``("a", "b", "c")``."""
    from canary.compare.suites import named_suites

    return named_suites(suite or ())


def result_filter(
    run: Sequence[int] | None,
    since: str | None,
    until: str | None,
    select: Sequence[str] | None,
    suite: Sequence[str] | None = None,
) -> ResultFilter:
    """The `--run/--since/--until/--select/--suite` options as the one results filter the
    library takes."""
    from canary.config.selection import parse_label_filters
    from canary.records import ResultFilter

    return ResultFilter(
        run_ids=tuple(run or ()),
        labels=parse_label_filters(select or ()),
        suites=suite_list(suite),
        since=optional_time(since),
        until=optional_time(until),
    )
