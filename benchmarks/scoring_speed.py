"""How long scoring 100k stored results takes, end to end: read, detect, write scores, rollups.

    python -m benchmarks.scoring_speed [--results 100000] [--pg URL] [--distinct F] [--no-memo]

Prints one row per database: results, scores written, seconds per phase (read, the detectors'
own time, store writes, group scorers, rollups), total, results per second and memo hits, then
one line per database. The detectors' time is shown beside the total so the overhead around
them is visible. The outputs are synthetic but realistic in length and mix (prose, code, a few
corrupted answers); the run is finished before scoring, so its rollups are built too.

``--distinct`` is the share of results whose output is unique (the rest repeat one of a few
answers, as a healthy fleet's greedy probes do). Its default is what the simulated fleet
gives, counted with ``select count(*), count(distinct probe_id || output_text) from results``:
the README's `canary sim serve` fleet probed with the smoke, fixed, code, entropy, script,
determinism, topk and utf8 suites (1–3 rounds each) stored 2,076 results, 526 distinct
(25.3%; sampled probes never repeat, greedy ones mostly do). `canary demo` (topk only, six
rounds, one faulty pool) stored 414 results, 66 distinct (15.9%).
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

from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultRecord
from canary.scoring import score_stored
from canary.store import open_store

SUITE = Suite(
    name="bench",
    probes=[
        Probe(id="prose", kind="script", prompt="Describe the function."),
        Probe(id="entropy", kind="entropy", prompt="Explain the module."),
        Probe(id="code", kind="code", prompt="Write a function.", expect={"language": "python"}),
        Probe(id="answer", kind="fixed", prompt="2+2=", expect={"exact": "4"}),
    ],
)
PROSE = (
    "Return the number of items in the container. If the argument is None, the default value "
    "is used instead and a new list is created for the caller."
)
CODE = "```python\ndef add(a, b):\n    return a + b\n```"
#: Distinct (probe, output) pairs among the simulated fleet's results (see the module doc).
FLEET_DISTINCT = 526 / 2076
WORDS = ("the", "list", "value", "caller", "default", "item", "returns", "count", "new", "key",
         "container", "argument", "result", "order", "copy", "index")  # fmt: skip


def unique(text: str, probe_id: str, i: int, rng: random.Random) -> str:
    """``text`` made unique to result ``i``: another identifier in the code, an added sentence
    (seeded words and the index, so never repeated) in prose and answers."""
    sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(6, 14)))
    if probe_id == "code":
        name = f"{rng.choice(WORDS)}_{i}"
        return text.replace("add", name) + f"\n# {sentence}"
    return f"{text} {sentence.capitalize()} ({i})."


def fill(url: str, n: int, distinct: float = FLEET_DISTINCT) -> float:
    store = open_store(url)
    suite_id = store.register_suite(SUITE)
    endpoint = EndpointConfig(name="bench", base_url="http://b/v1", model="m")
    store.register_endpoints([endpoint])
    run_id = store.start_run(suite_id)
    rng = random.Random(0)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    started = time.perf_counter()
    batch: list[ResultRecord] = []
    for i in range(n):
        probe = SUITE.probes[i % 4]
        text = {"prose": PROSE, "entropy": PROSE, "code": CODE, "answer": "4"}[probe.id]
        if rng.random() < 0.01:
            text = text[:40] + " สวัสดี " + text[40:]
        if rng.random() < distinct:
            text = unique(text, probe.id, i, rng)
        batch.append(
            ResultRecord(
                endpoint="bench",
                probe_id=probe.id,
                repeat_index=i,
                session_id=str(i),
                labels={"endpoint": "bench", "model": "m", "load": "probe"},
                request={},
                started_at=t0 + timedelta(milliseconds=i),
                latency_ms=1.0,
                attempts=1,
                output_text=text,
                finish_reason="stop",
            )
        )
        if len(batch) == 10_000:
            store.save_results(run_id, suite_id, batch)
            batch = []
    store.save_results(run_id, suite_id, batch)
    store.finish_run(run_id)
    return time.perf_counter() - started


COLUMNS = ("database", "results", "scores", "insert s", "read s", "detectors s", "write s",
           "groups s", "rollups s", "total s", "results/s", "memo hits")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--pg", help="also measure on this PostgreSQL URL (an empty database)")
    parser.add_argument(
        "--detectors", action="store_true", help="also print each detector's own seconds"
    )
    parser.add_argument(
        "--distinct",
        type=float,
        default=FLEET_DISTINCT,
        metavar="FRACTION",
        help=f"share of results with a unique output (default {FLEET_DISTINCT:.3f}: the sim fleet)",
    )
    parser.add_argument("--no-memo", action="store_true", help="score every result afresh")
    args = parser.parse_args()
    memo = "no memo" if args.no_memo else "memo"
    title = f"scoring {args.results:,} stored results, {args.distinct:.1%} distinct, {memo}"
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="right")
    lines: list[str] = []
    per_detector: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if args.pg:
            urls.append(("postgresql", args.pg))
        for name, url in urls:
            insert_s = fill(url, args.results, args.distinct)
            report = score_stored(open_store(url), reference=False, memo=not args.no_memo)
            phase = {k: report.phases.get(k, 0.0) for k in ("read", "write", "groups", "rollups")}
            detect = sum(report.detector_seconds.values())
            per_detector[name] = dict(report.detector_seconds)
            table.add_row(
                name,
                f"{report.results:,}",
                f"{report.scores:,}",
                f"{insert_s:.1f}",
                f"{phase['read']:.2f}",
                f"{detect:.2f}",
                f"{phase['write']:.2f}",
                f"{phase['groups']:.2f}",
                f"{phase['rollups']:.2f}",
                f"{report.seconds:.2f}",
                f"{report.results / report.seconds:,.0f}",
                f"{report.memo_hits:,}",
            )
            lines.append(
                f"{name}: score {report.results} results: total {report.seconds:.2f} s "
                f"(detectors {detect:.2f} s, overhead {report.seconds - detect:.2f} s: "
                f"read {phase['read']:.2f} s, write {phase['write']:.2f} s, "
                f"groups {phase['groups']:.2f} s, rollups {phase['rollups']:.2f} s)"
                f", memo hits {report.memo_hits}"
            )
    console = Console(width=160)
    if args.detectors:
        detail = Table(title="detectors' own seconds")
        detail.add_column("detector")
        for name in per_detector:
            detail.add_column(name, justify="right")
        for detector in sorted(next(iter(per_detector.values()), {})):
            detail.add_row(detector, *(f"{d[detector]:.2f}" for d in per_detector.values()))
        console.print(detail)
    console.print(table)
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
