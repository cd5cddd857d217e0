"""A local Typer app with the doctor command, and small lookups over check lists."""

from __future__ import annotations

import typer

from canary.cli.doctor import doctor
from canary.doctor import Check

app = typer.Typer()
app.command("doctor")(doctor)


@app.command("noop", hidden=True)
def _noop() -> None:
    """Keeps `doctor` a subcommand, as it is under `canary`."""


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}
