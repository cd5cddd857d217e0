"""Start-up time and throughput of the simulated fleet (CPU): `python benchmarks/sim_throughput.py`.

Starts the fleet from a fleet file (default `config/sim-fleet.yaml`, on a free port), then sends
short greedy completions (16 tokens) to the front door at concurrency 1, 8 and 16 and prints a
table. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from canary.sim.fleetconfig import load_sim_fleet
from canary.sim.server import running_fleet

PROMPTS = [
    "Return the number of items in",
    "def parse(text):\n    ",
    "The default value is",
    "Raise ValueError if",
]


async def _load(base_url: str, concurrency: int, total: int, max_tokens: int) -> float:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        queue = list(range(total))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                body = {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens}
                body["temperature"] = 0
                response = await client.post(
                    "/v1/completions", json=body, headers={"x-session-id": f"bench-{i}"}
                )
                response.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return total / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fleet", type=Path, default=Path("config/sim-fleet.yaml"))
    parser.add_argument(
        "--requests", type=int, default=64, help="completions per concurrency level"
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

    fleet = load_sim_fleet(args.fleet)
    table = Table("metric", "value", title=f"simulated fleet ({args.fleet})")
    with running_fleet(fleet) as running:
        table.add_row("start-up (s)", f"{running.startup_s:.2f}")
        asyncio.run(_load(running.base_url, 4, 8, args.max_tokens))  # warm-up
        for concurrency in (1, 8, 16):
            rate = asyncio.run(_load(running.base_url, concurrency, args.requests, args.max_tokens))
            table.add_row(f"completions/s at concurrency {concurrency}", f"{rate:.1f}")
        stats = httpx.get(f"{running.base_url}/admin/stats").json()
    sizes: dict[str, int] = {}
    for pool in stats["pools"].values():
        for size, count in pool["batch_size_requests"].items():
            sizes[size] = sizes.get(size, 0) + count
    shown = ", ".join(f"{k}:{v}" for k, v in sorted(sizes.items(), key=lambda kv: int(kv[0])))
    table.add_row("requests by batch size", shown)
    Console().print(table)


if __name__ == "__main__":
    main()
