"""How long `compare` takes over many stored results: aggregation is pushed into SQL.

    python -m benchmarks.compare_speed [--results 1000000] [--pg URL]

Fills a fresh database with two runs of N/2 results each, with one rate score
(`unexpected_script`) and one continuous score (`char_entropy`) per result, then times
`run_compare("run:1", "run:2")`. Prints one row per database.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from canary.compare import run_compare
from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultRecord
from canary.store import Store, open_store
from canary.store.scores import ScoreToSave, save_scores

SUITE = Suite(name="bench", probes=[Probe(id="p", kind="script", prompt="x")])
BATCH = 20_000


def fill(store: Store, n: int, bad_rate: float, start: datetime, seed: int) -> int:
    rng = random.Random(seed)
    suite_id = store.register_suite(SUITE)
    store.register_endpoints([EndpointConfig(name="gpu-a", base_url="http://a/v1", model="m")])
    run_id = store.start_run(suite_id)
    labels = {"endpoint": "gpu-a", "model": "m", "load": "probe"}
    for offset in range(0, n, BATCH):
        size = min(BATCH, n - offset)
        records = [
            ResultRecord(
                endpoint="gpu-a",
                probe_id="p",
                repeat_index=i,
                session_id=str(i),
                labels=labels,
                request={},
                started_at=start + timedelta(milliseconds=offset + i),
                latency_ms=80 + rng.random() * 40,
                attempts=1,
                output_text="ok",
            )
            for i in range(size)
        ]
        ids = store.save_results(run_id, suite_id, records)
        scores = []
        for result_id in ids:
            bad = rng.random() < bad_rate
            scores.append(
                ScoreToSave(result_id, "script", "1+x", "unexpected_script", float(bad), bad, None)
            )
            scores.append(
                ScoreToSave(
                    result_id,
                    "entropy",
                    "1+y",
                    "char_entropy",
                    4.0 + rng.gauss(0, 0.2),
                    False,
                    None,
                )
            )
        save_scores(store, scores)
    store.finish_run(run_id)
    return run_id


def measure(url: str, n: int) -> tuple[float, float, str]:
    store = open_store(url)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    started = time.perf_counter()
    before = fill(store, n // 2, 0.0, t0, 1)
    after = fill(store, n // 2, 0.002, t0 + timedelta(days=1), 2)
    fill_s = time.perf_counter() - started
    started = time.perf_counter()
    comparison = run_compare(store, f"run:{before}", f"run:{after}")
    return fill_s, time.perf_counter() - started, comparison.gate.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--pg", help="also measure on this PostgreSQL URL (an empty database)")
    args = parser.parse_args()
    table = Table(title=f"compare over {args.results:,} stored results (2 scores each)")
    for column in ("database", "fill s", "compare s", "gate"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if args.pg:
            targets.append(("postgresql", args.pg))
        for name, url in targets:
            fill_s, compare_s, status = measure(url, args.results)
            table.add_row(name, f"{fill_s:.0f}", f"{compare_s:.2f}", status)
    Console().print(table)


if __name__ == "__main__":
    main()
