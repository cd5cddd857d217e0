"""`canary init`: write an example fleet config and create or migrate the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from canary.cli.options import DEFAULT_FLEET, DbOption
from canary.cli.output import console
from canary.errors import ConfigError
from canary.resources import resource_dir


def init(
    path: Annotated[Path, typer.Argument(help="Where to write the fleet config.")] = DEFAULT_FLEET,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    db: DbOption = None,
) -> None:
    """Write an example fleet config (probing `canary sim serve`) and migrate the database."""
    from canary.config import load_fleet
    from canary.store import current_revision, resolve_database_url, upgrade
    from canary.store.engine import redact

    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it or give another path")
    path.write_text(
        (resource_dir("config") / "fleet.example.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    fleet = load_fleet(path)  # the template must always validate
    url = resolve_database_url(db, fleet.database_url)
    upgrade(url)
    console.print(f"wrote [bold]{path}[/] ({len(fleet.endpoints)} endpoints)")
    console.print(f"database {redact(url)} at revision [bold]{current_revision(url)}[/]")
    console.print(
        "next: `canary sim serve` in another shell, then "
        f"`canary run --fleet {path} --suite smoke --once`"
    )
