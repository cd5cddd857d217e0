"""How long `canary --help` takes to start, against a bare typer app.

Run from the repo root: ``python -m benchmarks.cli_startup [N]``.

Each row is the median wall time of N fresh interpreter processes (default 15). The bare row is
a one-command typer app with rich help, the floor any typer CLI pays; the goal is `canary
--help` within 3× of it, which holds only while every command module imports its library code
(SQLAlchemy, numpy, scipy, torch) inside the command. `tests/test_architecture.py` checks the
imports themselves, which a busy machine cannot fail; the times are judged here.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

GOAL = 3.0

BARE_APP = """
import typer

app = typer.Typer(rich_markup_mode="rich", add_completion=False)


@app.command()
def hello(name: str = typer.Option("world", help="Who to greet.")) -> None:
    '''Say hello.'''


app()
"""

CASES: dict[str, list[str]] = {
    "bare typer app --help": [sys.executable, "-c", BARE_APP, "--help"],
    "canary --help": [sys.executable, "-m", "canary", "--help"],
    "canary run --help": [sys.executable, "-m", "canary", "run", "--help"],
    "canary compare --help": [sys.executable, "-m", "canary", "compare", "--help"],
}


def median_seconds(command: list[str], n: int) -> float:
    """The median wall time of `n` runs of `command` (one untimed run first warms the disk)."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(n: int = 15) -> int:
    """Print the table; exit 1 when `canary --help` misses the goal."""
    results = {name: median_seconds(command, n) for name, command in CASES.items()}
    bare = results["bare typer app --help"]
    print(f"CLI start-up, median of {n} processes (goal: canary --help ≤ {GOAL:g}× bare typer)")
    print(f"{'command':<24} {'median':>9} {'× bare':>7}")
    for name, seconds in results.items():
        print(f"{name:<24} {seconds * 1000:>7.0f} ms {seconds / bare:>6.2f}×")
    ratio = results["canary --help"] / bare
    print(f"goal {'met' if ratio <= GOAL else 'MISSED'}: {ratio:.2f}× (≤ {GOAL:g}×)")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15))
