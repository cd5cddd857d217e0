"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
EndpointOption = Annotated[
    list[str] | None,
    typer.Option("--endpoint", "-e", help="Only this endpoint (repeatable).", show_default=False),
]

DEFAULT_FLEET = Path("canary.yaml")
