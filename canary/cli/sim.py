"""`canary sim`: serve the simulated fleet, switch its faults, train its tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from canary.cli.options import JsonOption
from canary.cli.output import console, print_json
from canary.cli.sim_quantize import quantize

app = typer.Typer(help="The simulated serving fleet: a real target with switchable faults.")

UrlOption = Annotated[
    str, typer.Option("--url", help="Base URL of a running fleet.", envvar="CANARY_SIM_URL")
]
DEFAULT_URL = "http://127.0.0.1:8400"


@app.command()
def serve(
    fleet: Annotated[
        Path | None,
        typer.Option("--fleet", "-f", help="Simulated fleet file (default: the shipped one)."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default: the file's).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: the file's).")] = None,
) -> None:
    """Serve the pools and the front door until interrupted."""
    import uvicorn

    from canary.sim.embedded import default_sim_fleet_path
    from canary.sim.fleetconfig import load_sim_fleet
    from canary.sim.server import build_app

    config = load_sim_fleet(fleet or default_sim_fleet_path())
    host, port = host or config.host, port if port is not None else config.port
    pools = ", ".join(p.name for p in config.pools)
    console.print(f"serving {pools} and the front door on http://{host}:{port}", highlight=False)
    uvicorn.run(build_app(config), host=host, port=port, log_level="warning")


@app.command()
def fault(
    pool: Annotated[str, typer.Argument(help="Pool to change.")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="FAULT.KEY=VALUE or precision=bf16 (repeatable).", show_default=False
        ),
    ] = None,
    on: Annotated[
        list[str] | None,
        typer.Option("--on", help="Switch a fault on with defaults.", show_default=False),
    ] = None,
    off: Annotated[
        list[str] | None, typer.Option("--off", help="Switch a fault off.", show_default=False)
    ] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Switch a pool's faults at run time (recorded as a change event)."""
    from canary.sim.admin_client import AdminClient, fault_update

    body = fault_update(set_ or [], on or [], off or [])
    result = AdminClient(url).set_faults(pool, body)
    _print_pool(pool, result["pool"])


@app.command()
def router(
    misroute_share: Annotated[
        float | None, typer.Option(help="Share of sessions sent to the long-context pool (0-1).")
    ] = None,
    served_by_header: Annotated[
        bool | None, typer.Option("--served-by-header/--no-served-by-header", help="x-served-pool.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Change the front door at run time (recorded as a change event)."""
    from canary.errors import CanaryError
    from canary.sim.admin_client import AdminClient

    body: dict[str, Any] = {}
    if misroute_share is not None:
        body["misroute_share"] = misroute_share
    if served_by_header is not None:
        body["served_by_header"] = served_by_header
    if not body:
        raise CanaryError("nothing to change; give --misroute-share or --served-by-header")
    result = AdminClient(url).set_router(body)
    console.print(f"router: {result['router']}", highlight=False)


@app.command()
def state(url: UrlOption = DEFAULT_URL, json: JsonOption = False) -> None:
    """Show pools, their faults, the front door and the change events."""
    from rich.table import Table

    from canary.sim.admin_client import AdminClient

    data = AdminClient(url).state()
    if json:
        print_json(data)
        return
    table = Table("pool", "context", "precision", "rope", "faults")
    for name, pool in data["pools"].items():
        faults = ", ".join(k for k, v in pool["faults"].items() if v) or "-"
        rope = pool["rope_scaling"]
        table.add_row(
            name,
            pool["context"],
            pool["precision"],
            f"{rope['type']} ×{rope['factor']:g}" if rope else "-",
            faults,
        )
    console.print(table)
    r = data["router"]
    console.print(
        f"front door: short → {', '.join(r['short_pools'])}; long → {r['long_context_pool']}; "
        f"misroute_share {r['misroute_share']:g}; served-by header "
        f"{'on' if data['served_by_header'] else 'off'}; {len(data['events'])} change events",
        highlight=False,
    )


@app.command()
def train(
    out_dir: Annotated[Path | None, typer.Option(help="Where to write the model.")] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train the tiny model the fleet serves (CPU, minutes)."""
    from canary.sim import train_tiny

    kwargs: dict[str, Any] = {"out_dir": out_dir, "seed": seed}
    if steps is not None:
        kwargs["steps"] = steps
    train_tiny.main(**kwargs)


app.command("quantize")(quantize)


def _print_pool(name: str, pool: dict[str, Any]) -> None:
    faults = {k: v for k, v in pool["faults"].items() if v}
    console.print(
        f"{name}: precision {pool['precision']}, rope {pool['rope_scaling'] or '-'}, "
        f"faults {faults or '-'}",
        highlight=False,
    )
