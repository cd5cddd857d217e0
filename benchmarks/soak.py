"""Soak: the daemon on accelerated rounds, to measure memory drift and database growth.

`python benchmarks/soak.py --minutes 30 [--db URL]`

Runs the real daemon (scheduler, slots, scoring, CUSUM monitors, outbox) against the embedded
simulated fleet with every schedule of a production-like config compressed to `--every`, after
capturing a baseline. Samples the process RSS and the database size, then extrapolates to one
day of operation at the production cadence (`--production-every`, default 5 minutes): rows and
bytes per round are what a day multiplies, memory drift per round says whether anything leaks.

The fleet runs in a child process (`canary sim serve`) so the RSS measured is the daemon's own,
as in production (`--fleet-in-process` puts it back in this process). Three memory series tell
a leak from allocator behaviour: RSS; RSS after `malloc_trim(0)` (freed memory glibc kept in
its arenas is returned first, so what remains is held); and the blocks Python's allocator holds
(`sys.getallocatedblocks()`: grows only if Python objects accumulate).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, text

from canary.config.fleet import FleetConfig
from canary.daemon.service import SlotOutcome
from canary.replay import baseline_then_alerting
from canary.sim.embedded import default_sim_fleet_path, embedded_fleet, fleet_config_for
from canary.sim.fleetconfig import load_sim_fleet
from canary.store import Store, open_store
from canary.store.models import ResultRow, RollupRow, RunRow, ScoreRow
from canary.timespec import parse_duration


def rss_mib() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def trimmed_rss_mib() -> float:
    """RSS after asking glibc to hand freed arena memory back (the memory really held)."""
    name = ctypes.util.find_library("c")
    if name:
        ctypes.CDLL(name).malloc_trim(0)
    return rss_mib()


@contextmanager
def child_fleet() -> Iterator[FleetConfig]:
    """The simulated fleet served by `canary sim serve` in a child process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "canary", "sim", "serve", "--port", str(port)]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base_url}/v1/models", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if child.poll() is not None or time.monotonic() > deadline:
                    shown = " ".join(cmd)
                    raise SystemExit(f"the simulated fleet did not start: {shown}") from None
                time.sleep(0.5)
        yield fleet_config_for(load_sim_fleet(default_sim_fleet_path()), base_url)
    finally:
        child.terminate()
        child.wait(timeout=30)


def db_bytes(store: Store) -> int:
    url = store.url
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with store.engine.connect() as conn:
        return int(conn.execute(text("select pg_database_size(current_database())")).scalar_one())


def counts(store: Store) -> tuple[int, int, int, int]:
    """Runs, results, scores and rollup rows (runs', hours', days' and weeks' sums) stored."""
    with store.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (RunRow, ResultRow, ScoreRow, RollupRow)
        )


class Sample(NamedTuple):
    seconds: float
    rounds: int
    rss: float
    trimmed: float
    blocks: int


def schedules(every: str) -> list[dict[str, object]]:
    return [
        {"name": "topk-pools", "suite": "topk", "every": every, "select": ["route=direct"],
         "loads": ["probe", "burst-c8"]},
        {"name": "routing", "suite": "routing", "every": every, "select": ["route=front-door"]},
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", default="20s", help="accelerated schedule period")
    parser.add_argument("--production-every", default="5m", help="cadence to extrapolate to")
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    parser.add_argument(
        "--fleet-in-process", action="store_true", help="serve the fleet in this process"
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="canary-soak-")
    store = open_store(args.db or f"sqlite:///{tmp}/soak.db")
    console = Console()
    with embedded_fleet() if args.fleet_in_process else child_fleet() as fleet:
        slots: list[SlotOutcome] = []
        lock = threading.Lock()

        def on_slot(outcome: SlotOutcome) -> None:
            with lock:
                slots.append(outcome)

        start = datetime.now(UTC)
        daemon = baseline_then_alerting(
            store,
            fleet,
            [start - timedelta(hours=5 - hour) for hour in range(2)],
            healthy={"sim": True, "schedules": schedules("1h")},
            alerting={
                "sim": True,
                "schedules": schedules(args.every),
                "sinks": [{"type": "webhook", "url": "http://127.0.0.1:9/unreachable"}],
                "retention": {"raw_output_days": 30},
            },
            baseline="soak",
            note="warm-up",
            on_slot=on_slot,
        )
        config = daemon.config
        rss0, bytes0, rows0 = rss_mib(), db_bytes(store), counts(store)
        samples: list[Sample] = []
        began = time.monotonic()
        daemon.start()
        try:
            while time.monotonic() - began < args.minutes * 60:
                time.sleep(10)
                with lock:
                    done = sum(len(s.rounds) for s in slots)
                samples.append(
                    Sample(
                        time.monotonic() - began,
                        done,
                        rss_mib(),
                        trimmed_rss_mib(),
                        sys.getallocatedblocks(),
                    )
                )
        finally:
            daemon.stop()
        elapsed = time.monotonic() - began
        with lock:
            rounds = sum(len(s.rounds) for s in slots)
            failed = sum(s.status == "failed" for s in slots)
        rows1, bytes1 = counts(store), db_bytes(store)

    # Memory drift over the second half (after warm-up of caches, the model and the pools).
    half = [s for s in samples if s.seconds >= elapsed / 2] or samples
    span = max(half[-1].rounds - half[0].rounds, 1) if half else 1

    def drift(field: str) -> float:
        return (getattr(half[-1], field) - getattr(half[0], field)) / span if half else 0.0

    per_round_bytes = (bytes1 - bytes0) / max(rounds, 1)
    per_round_rows = [(b - a) / max(rounds, 1) for a, b in zip(rows0, rows1, strict=True)]
    production_period = parse_duration(args.production_every)
    loads_per_slot = rounds / max(len(slots), 1)
    rounds_per_day = timedelta(days=1) / production_period * len(config.schedules) * loads_per_slot

    table = Table(title=f"soak: {elapsed / 60:.1f} min, {rounds} rounds ({failed} failed slots)")
    table.add_column("measure")
    table.add_column("per round", justify="right")
    table.add_column(f"per day at every {args.production_every}", justify="right")
    table.add_row("runs / results / scores / rollup rows",
                  " / ".join(f"{x:.1f}" for x in per_round_rows),
                  " / ".join(f"{x * rounds_per_day:,.0f}" for x in per_round_rows))  # fmt: skip
    table.add_row("database growth", f"{per_round_bytes / 1024:.1f} KiB",
                  f"{per_round_bytes * rounds_per_day / 2**20:,.1f} MiB")  # fmt: skip
    for label, field in (("RSS drift (2nd half)", "rss"), ("RSS after malloc_trim", "trimmed")):
        table.add_row(label, f"{drift(field) * 1024:.2f} KiB",
                      f"{drift(field) * rounds_per_day:,.1f} MiB")  # fmt: skip
    table.add_row("Python allocated blocks", f"{drift('blocks'):+.1f}",
                  f"{drift('blocks') * rounds_per_day:+,.0f}")  # fmt: skip
    console.print(table)
    console.print(
        f"RSS: {rss0:.0f} MiB at start, {samples[-1].rss if samples else rss0:.0f} MiB at end, "
        f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
        f"{rounds_per_day:,.0f} rounds a day at the production cadence; database {store.url}"
    )


if __name__ == "__main__":
    main()
