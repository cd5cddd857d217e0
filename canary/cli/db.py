"""`canary db upgrade|downgrade|current`: the schema, through alembic migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from canary.cli.options import DbOption, JsonOption
from canary.cli.output import console, print_json

app = typer.Typer(no_args_is_help=True)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    db: DbOption = None,
) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    from canary.store import current_revision, resolve_database_url, upgrade
    from canary.store.engine import redact

    url = resolve_database_url(db)
    upgrade(url, revision)
    console.print(f"{redact(url)} is at revision [bold]{current_revision(url)}[/]")


# "-1" (one step down) is a revision, not an option.
@app.command(context_settings={"ignore_unknown_options": True})
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: an id, -1, or base.")],
    db: DbOption = None,
) -> None:
    """Migrate the database down to REVISION (`base` drops every canary table)."""
    from canary.store import current_revision, downgrade, resolve_database_url
    from canary.store.engine import redact

    url = resolve_database_url(db)
    downgrade(url, revision)
    console.print(f"{redact(url)} is at revision [bold]{current_revision(url) or 'base'}[/]")


@app.command()
def current(db: DbOption = None, json: JsonOption = False) -> None:
    """Show the database's schema revision and the newest this canary knows.

    Exit 4 when a newer canary migrated the database: `canary db upgrade` cannot fix that.
    """
    from canary.store import current_revision, head_revision, resolve_database_url
    from canary.store.engine import redact
    from canary.store.migrate import check_known_revision

    url = resolve_database_url(db)
    now, head = current_revision(url), head_revision()
    check_known_revision(now, redact(url))
    if json:
        print_json(
            {"database": redact(url), "current": now, "head": head, "up_to_date": now == head}
        )
        return
    state = "[green]up to date[/]" if now == head else "[yellow]run `canary db upgrade`[/]"
    console.print(f"{redact(url)}: revision [bold]{now or 'none'}[/] (head {head}) {state}")
