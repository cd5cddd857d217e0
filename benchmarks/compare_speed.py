"""How long `compare` takes over many stored results, with rollups and with a bare GROUP BY.

    python -m benchmarks.compare_speed [--results 1000000] [--pg URL] [--endpoints 100]

Part 1, per database: fills a fresh database with two runs of N/2 results each (one rate score,
`unexpected_script`, and one continuous score, `char_entropy`, per result), builds the runs'
rollups as `canary score` does, then times `run_compare("run:1", "run:2")` (which reads the
rollups) and the same two aggregates answered by a bare GROUP BY over the raw rows
(`aggregate(..., rollups=False)`: the cost before rollups).

Part 2, SQLite: a synthetic year of a fleet of E endpoints probed every 5 minutes (about
500 million results for 100 endpoints), its rollups generated directly as the store keeps them:
one day rollup per suite-day for every day before today, one week rollup per whole week, and
per-run and hour rollups for the last 7 days (the store keeps 14; runs are the report's
per-round trends, hours answer for the days a window cuts). Raw rows are not generated,
so the report's evidence lists are empty. Times `compare` of the last 7 days against the 51
weeks before them, and the on-call report for `--since 7d`.

The last line reads `compare 1000000 results: sqlite X s, postgresql Y s; bare GROUP BY sqlite
A s, postgresql B s; year of 100 endpoints Z s`.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from canary.compare import run_compare
from canary.compare.aggregate import aggregate
from canary.config.fleet import EndpointConfig
from canary.probes.model import Probe, Suite
from canary.records import ResultFilter, ResultRecord
from canary.stats import DEFAULT_POLICIES
from canary.stats.summaries import summary_spec
from canary.store import Store, open_store
from canary.store.rollup_marks import WEEK_HOURS, week_start
from canary.store.rollups import HOUR_SETTLE, SETTLE, build_rollups, rollup_spec
from canary.store.scores import ScoreToSave, save_scores

SUITE = Suite(name="bench", probes=[Probe(id="p", kind="script", prompt="x")])
BATCH = 20_000
ROUNDS_PER_DAY = 288  # every 5 minutes
PROBES_PER_ROUND = 48  # results per endpoint per round: 100 endpoints → ~505M a year
BY = ("endpoint", "load")


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
                session_id=f"{seed}-{offset + i}",
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


def measure(url: str, n: int) -> dict[str, float]:
    """Fill, build rollups, then time compare (rollups) and the bare GROUP BY."""
    store = open_store(url)
    # Recent: per-run rollups are kept for the last two weeks (older runs are read by day).
    t0 = datetime.now(UTC) - timedelta(hours=3)
    started = time.perf_counter()
    before = fill(store, n // 2, 0.0, t0, 1)
    after = fill(store, n // 2, 0.002, t0 + timedelta(hours=1), 2)
    out = {"fill": time.perf_counter() - started}
    started = time.perf_counter()
    build_rollups(store, rollup_spec(summary_spec()))
    out["rollups"] = time.perf_counter() - started
    run_compare(store, f"run:{before}", f"run:{after}", by=BY)  # warm: imports, caches
    started = time.perf_counter()
    comparison = run_compare(store, f"run:{before}", f"run:{after}", by=BY)
    out["compare"] = time.perf_counter() - started
    out["regression"] = float(comparison.gate.status == "regression")
    policies = dict(DEFAULT_POLICIES)
    started = time.perf_counter()
    for run_id in (before, after):
        aggregate(store, ResultFilter(run_ids=(run_id,)), BY, policies, rollups=False)
    out["bare"] = time.perf_counter() - started
    store.close()
    return out


def synthetic_year(url: str, endpoints: int) -> dict[str, float]:
    """A year of rollups for ``endpoints`` endpoints, generated directly; time compare and
    the 7-day report over it."""
    out = generate_year(url, endpoints)
    return out | time_year(url)


def time_year(url: str) -> dict[str, float]:
    """Time compare (last 7 days against the 51 weeks before) and the 7-day report."""
    from canary.reports.build import build_report

    store = open_store(url)
    now = datetime.now(UTC)
    out: dict[str, float] = {}
    run_compare(store, "1h..", "1h..", by=BY, suites=("bench",))  # warm: imports, caches
    started = time.perf_counter()
    run_compare(store, "365d..7d", "7d..", by=BY, suites=("bench",))
    out["compare"] = time.perf_counter() - started
    started = time.perf_counter()
    build_report(store, ResultFilter(since=now - timedelta(days=7)), by=BY)
    out["report"] = time.perf_counter() - started
    store.close()
    return out


def generate_year(url: str, endpoints: int) -> dict[str, float]:
    """Generate the year's rollups (see the module docstring) into an empty database."""
    from sqlalchemy import insert, select

    from canary.store.models import (
        CohortRow,
        RollupDayRow,
        RollupRow,
        RollupRunRow,
        RunRow,
    )
    from canary.store.repository import cohort_fingerprint

    store = open_store(url)
    spec = rollup_spec(summary_spec())
    suite_id = store.register_suite(SUITE)
    names = [f"ep-{i:03d}" for i in range(endpoints)]
    store.register_endpoints(
        [EndpointConfig(name=n, base_url=f"http://{n}/v1", model="m") for n in names]
    )
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    today = now.replace(hour=0)
    first_day = today - timedelta(days=365)
    recent = today - timedelta(days=7)
    rng = random.Random(5)
    started = time.perf_counter()
    with store.engine.begin() as conn:
        cohorts = []
        for name in names:
            labels = {"endpoint": name, "model": "m", "load": "probe"}
            cohorts.append(
                conn.execute(
                    insert(CohortRow)
                    .values(fingerprint=cohort_fingerprint(labels), labels=labels)
                    .returning(CohortRow.id)
                ).scalar_one()
            )
    per_round = PROBES_PER_ROUND

    def stats_rows(n: int, **where: Any) -> list[dict[str, Any]]:
        """Errors, one rate metric, latency and one continuous metric, as a day or run holds
        them for ``n`` results of each cohort."""
        rows: list[dict[str, Any]] = []
        latency_bins = spec.latency["latency_ms"].bins
        entropy_bins = spec.bins["char_entropy"].bins
        for cohort_id in cohorts:
            base = {"cohort_id": cohort_id, "probe_key": "", "first_started_at": None}
            base |= {"last_started_at": None, **where}
            bad = sum(rng.random() < 0.002 for _ in range(min(n, 50))) * max(1, n // 50)
            rows.append(base | _counts("errors", "", "", "", n, 0, n // 3))
            rows.append(base | _counts("flags", "unexpected_script", "1+x", "", n, bad, n // 3))
            for b in range(latency_bins // 2 - 6, latency_bins // 2 + 6):
                rows.append(base | _counts("latency", "latency_ms", "", str(b), n // 12))
            for b in range(entropy_bins // 2 - 5, entropy_bins // 2 + 5):
                rows.append(base | _counts("bins", "char_entropy", "1+y", str(b), n // 10))
        return rows

    day_ids: dict[datetime, int] = {}
    with store.engine.begin() as conn:
        for d in range((today - first_day).days):
            day = first_day + timedelta(days=d)
            day_id = conn.execute(
                insert(RollupDayRow)
                .values(
                    day=day,
                    suite_id=suite_id,
                    spec_key=spec.key,
                    runs=ROUNDS_PER_DAY,
                    first_started_at=day,
                    last_started_at=day + timedelta(hours=23, minutes=59),
                    built_at=now,
                )
                .returning(RollupDayRow.id)
            ).scalar_one()
            day_ids[day] = day_id
            conn.execute(insert(RollupRow), stats_rows(ROUNDS_PER_DAY * per_round, day_id=day_id))
        week = week_start(first_day)
        while week + timedelta(days=7) + SETTLE <= now:  # weeks, as `compact_weeks_on` leaves them
            days = [d for d in day_ids if week <= d < week + timedelta(days=7)]
            week_id = conn.execute(
                insert(RollupDayRow)
                .values(
                    day=week,
                    hours=WEEK_HOURS,
                    suite_id=suite_id,
                    spec_key=spec.key,
                    runs=ROUNDS_PER_DAY * len(days),
                    first_started_at=min(days),
                    last_started_at=max(days) + timedelta(hours=23, minutes=59),
                    built_at=now,
                )
                .returning(RollupDayRow.id)
            ).scalar_one()
            rows = stats_rows(ROUNDS_PER_DAY * len(days) * per_round, day_id=week_id)
            conn.execute(insert(RollupRow), rows)
            week += timedelta(days=7)
        hour_ids: dict[datetime, int] = {}
        hour = recent
        while hour + timedelta(hours=1) + HOUR_SETTLE <= now:  # as `compact_days_on` leaves them
            hour_ids[hour] = conn.execute(
                insert(RollupDayRow)
                .values(
                    day=hour,
                    hours=1,
                    suite_id=suite_id,
                    spec_key=spec.key,
                    runs=ROUNDS_PER_DAY // 24,
                    first_started_at=hour,
                    last_started_at=hour + timedelta(minutes=55, seconds=30),
                    built_at=now,
                )
                .returning(RollupDayRow.id)
            ).scalar_one()
            rows = stats_rows(ROUNDS_PER_DAY // 24 * per_round, day_id=hour_ids[hour])
            conn.execute(insert(RollupRow), rows)
            hour += timedelta(hours=1)
        rounds = int((now - recent) / timedelta(minutes=5))
        for r in range(rounds):
            at = recent + timedelta(minutes=5 * r)
            run_id = conn.execute(
                insert(RunRow)
                .values(suite_id=suite_id, started_at=at, finished_at=at, status="completed")
                .returning(RunRow.id)
            ).scalar_one()
            conn.execute(
                insert(RollupRunRow).values(
                    run_id=run_id,
                    spec_key=spec.key,
                    first_started_at=at,
                    last_started_at=at + timedelta(seconds=30),
                    results=per_round * endpoints,
                    day_id=day_ids.get(at.replace(hour=0, minute=0)),
                    hour_id=hour_ids.get(at.replace(minute=0)),
                    run_rows=True,
                    built_at=now,
                )
            )
            rows = stats_rows(per_round, run_id=run_id)
            for row in rows:
                row["first_started_at"] = at
                row["last_started_at"] = at + timedelta(seconds=30)
            conn.execute(insert(RollupRow), rows)
        generated = conn.execute(select(RollupRow.id).order_by(RollupRow.id.desc())).first()
    out: dict[str, float] = {"generate": time.perf_counter() - started}
    out["rollup_rows"] = float(generated[0] if generated else 0)
    out["results"] = float(365 * ROUNDS_PER_DAY * per_round * endpoints)
    store.close()
    return out


def _counts(
    aggregation: str, metric: str, fingerprint: str, bucket: str, n: int, k: int = 0, s: int = 0
) -> dict[str, Any]:
    return {
        "aggregation": aggregation,
        "metric": metric,
        "fingerprint": fingerprint,
        "bucket": bucket,
        "n": n,
        "k": k,
        "sessions": s,
        "flagged_sessions": min(k, s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--pg", help="also measure on this PostgreSQL URL (an empty database)")
    parser.add_argument("--endpoints", type=int, default=100, help="endpoints in the year")
    args = parser.parse_args()
    table = Table(title=f"compare over {args.results:,} stored results (2 scores each)")
    for column in ("database", "fill s", "rollups s", "compare s", "bare GROUP BY s"):
        table.add_column(column, justify="right")
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if args.pg:
            targets.append(("postgresql", args.pg))
        for name, url in targets:
            m = figures[name] = measure(url, args.results)
            table.add_row(
                name,
                f"{m['fill']:.0f}",
                f"{m['rollups']:.1f}",
                f"{m['compare']:.2f}",
                f"{m['bare']:.2f}",
            )
        year = synthetic_year(f"sqlite:///{Path(tmp) / 'year.db'}", args.endpoints)
    console = Console()
    console.print(table)
    year_table = Table(title=f"a year of {args.endpoints} endpoints every 5 minutes (SQLite)")
    for column in ("results summarised", "rollup rows", "generate s", "compare s", "report 7d s"):
        year_table.add_column(column, justify="right")
    year_table.add_row(
        f"{year['results']:,.0f}",
        f"{year['rollup_rows']:,.0f}",
        f"{year['generate']:.0f}",
        f"{year['compare']:.2f}",
        f"{year['report']:.2f}",
    )
    console.print(year_table)
    pg = figures.get("postgresql")
    pg_compare = f"{pg['compare']:.2f}" if pg else "n/a"
    pg_bare = f"{pg['bare']:.2f}" if pg else "n/a"
    print(
        f"compare {args.results} results: sqlite {figures['sqlite']['compare']:.2f} s, "
        f"postgresql {pg_compare} s; bare GROUP BY sqlite {figures['sqlite']['bare']:.2f} s, "
        f"postgresql {pg_bare} s; year of {args.endpoints} endpoints {year['compare']:.2f} s"
    )


if __name__ == "__main__":
    main()
