"""`canary suite`: generate probe suites from the reference model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from canary.cli.options import ReferenceOption
from canary.cli.output import console

app = typer.Typer(no_args_is_help=True)


@app.command("border")
def border(
    from_reference: Annotated[
        bool,
        typer.Option(
            "--from-reference", help="Generate from the reference model (the only source)."
        ),
    ] = False,
    n: Annotated[int, typer.Option("--n", min=1, max=2000, help="Border inputs to keep.")] = 200,
    out: Annotated[
        Path, typer.Option("--out", help="Suite manifest to write (data beside it, .jsonl).")
    ] = Path("probes/border.yaml"),
    reference: ReferenceOption = None,
) -> None:
    """Write a suite of border inputs: prompts (the shipped prompts and the reference's own
    continuations of them) where the reference's top-2 next tokens nearly tie at temperature 0,
    each with the reference's choice and margin. `canary identity` counts flipped choices.

    Exit 0 written, 3 bad arguments or no reference model.
    """
    from canary.config.reference import resolve_reference
    from canary.errors import ConfigError
    from canary.identity._border_suite import find_border_prompts, write_border_suite
    from canary.identity._prompts import shipped_prompts
    from canary.scoring.reference import shared_reference_model

    if not from_reference:
        raise ConfigError("canary suite border: give --from-reference (the only source so far)")
    config = resolve_reference(reference)
    path = config.model if config is not None and config.model else None
    model = shared_reference_model(path)
    found = find_border_prompts(model, list(shipped_prompts()), n)
    if not found:
        raise ConfigError("the reference has no near-tie among the shipped prompts")
    write_border_suite(found, out, model.fingerprint)
    console.print(
        f"wrote {len(found)} border inputs to {out} (gaps {found[0].gap:.3f}.."
        f"{found[-1].gap:.3f} nats)",
        highlight=False,
    )
