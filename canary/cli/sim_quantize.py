"""`canary sim quantize`: write a 4- or 8-bit build of a checkpoint for a real server to load."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from canary.cli.options import JsonOption
from canary.cli.output import console, print_json

if TYPE_CHECKING:
    from canary.sim.quantize import Bits


def quantize(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the build to.")],
    model: Annotated[
        str, typer.Option("--model", help="Local model directory, or canary:tiny (shipped).")
    ] = "canary:tiny",
    bits: Annotated[int, typer.Option("--bits", min=4, max=8, help="4 or 8.")] = 4,
    group_size: Annotated[
        int, typer.Option("--group-size", min=1, help="Input columns sharing one scale.")
    ] = 32,
    embeddings: Annotated[
        bool, typer.Option("--embeddings", help="Also quantize the tied embedding (8 bits).")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a non-empty --out.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Write MODEL's decoder Linear weights through symmetric per-group round-to-nearest
    quantization (as the simulated pools' `weights: int4 | int8`), dequantized, with its
    tokenizer and chat template: a build any server loads, for `canary identity` to tell apart.

    Exit 0 written, 3 bad arguments or no model there.
    """
    from canary.sim.export_quantized import export_quantized

    build = export_quantized(
        model,
        out,
        bits=cast("Bits", bits),  # checked there: anything but 4 or 8 is a config error
        group_size=group_size,
        embeddings=embeddings,
        overwrite=overwrite,
    )
    if json:
        print_json(asdict(build))
        return
    console.print(
        f"wrote a {build.bits}-bit build (group {build.group_size}, {build.linears} weights) "
        f"of {build.source} to {build.out_dir}",
        highlight=False,
    )
