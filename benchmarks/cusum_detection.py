"""Detection delay and false-alarm run length of the CUSUM flag-rate detector.

    python -m benchmarks.cusum_detection [--replications 500] [--false-alarms-per-year 1]
        [--monitors 200] [--round-minutes 5] [--h0-arl 100]

Table 1: for several (p0, p1, probes per round) settings, with the threshold that gives the whole
fleet at most ``--false-alarms-per-year`` false alerts: the mean and p90 probes to detect a jump
from p0 to p1 (from a fresh start), the oracle minimum ``h / KL(p1‖p0)`` at the same threshold
and the ratio, and the same against ``ln(ARL) / KL``, the oracle that needs no grid.
Table 2: the run length to false alarm under H0 (true rate = p0) against Lorden's bound, at a
modest ARL target so the runs can be simulated. Table 3: detection delay after a long healthy
history, CUSUM against the mixture SPRT (`SequentialRateMonitor`, same threshold in nats), whose
evidence the history dilutes.
"""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime, timedelta

import numpy as np
from rich.console import Console
from rich.table import Table

from canary.stats.cusum import (
    CusumRateDetector,
    arl_for_false_alarms,
    oracle_detection_probes,
)
from canary.stats.sequential import SequentialRateMonitor, bernoulli_kl

T0 = datetime(2025, 1, 1, tzinfo=UTC)
EVERY = timedelta(minutes=5)

# (p0, p1, margin, probes per round): p1 on a grid point of p0 + margin·2^j or between two
SETTINGS = [
    (0.001, 0.003, 0.002, 20),
    (0.001, 0.008, 0.002, 20),
    (0.002, 0.01, 0.002, 20),
    (0.01, 0.03, 0.01, 50),
    (0.01, 0.05, 0.01, 10),
    (0.05, 0.1, 0.05, 20),
    (0.05, 0.2, 0.05, 5),
]


def rounds_to_alarm(
    d: CusumRateDetector, p: float, n: int, rng: np.random.Generator, cap: int
) -> int:
    """Rounds at rate ``p`` until ``d`` alarms (``cap`` if it never does)."""
    r = 0
    while r < cap:
        for k in rng.binomial(n, p, min(1024, cap - r)).tolist():
            r += 1
            if d.update(k, n, T0 + r * EVERY).alarm:
                return r
    return cap


def detection_table(args: argparse.Namespace, arl: float, rng: np.random.Generator) -> Table:
    table = Table(
        title=f"Probes to detect p0 → p1 (fresh start), ARL ≥ {arl:.3g} rounds per monitor "
        f"({args.monitors} monitors, a round every {args.round_minutes} min, "
        f"≤ {args.false_alarms_per_year} false alert/year for the fleet)"
    )
    for col in (
        "p0",
        "p1",
        "margin",
        "round",
        "J",
        "h (nats)",
        "mean",
        "p90",
        "oracle h/KL",
        "mean / oracle",
        "ln ARL/KL",
        "mean / that",
    ):
        table.add_column(col, justify="right")
    for p0, p1, margin, n in SETTINGS:
        d = CusumRateDetector.for_arl(p0, margin, arl)
        delays = []
        for _ in range(args.replications):
            d.reset()
            delays.append(n * rounds_to_alarm(d, p1, n, rng, 10**7))
        mean = float(np.mean(delays))
        oracle = oracle_detection_probes(p0, p1, d.threshold)
        no_grid = math.log(arl) / bernoulli_kl(p1, p0)
        table.add_row(
            f"{p0:.1%}",
            f"{p1:.1%}",
            f"{margin:.1%}",
            str(n),
            str(len(d.alternatives)),
            f"{d.threshold:.1f}",
            f"{mean:.0f}",
            f"{np.percentile(delays, 90):.0f}",
            f"{oracle:.0f}",
            f"{mean / oracle:.2f}",
            f"{no_grid:.0f}",
            f"{mean / no_grid:.2f}",
        )
    return table


def false_alarm_table(args: argparse.Namespace, rng: np.random.Generator) -> Table:
    cap = 200 * args.h0_arl
    table = Table(
        title=f"Rounds to a false alarm under H0 (rate = p0), ARL target {args.h0_arl} rounds "
        f"(Lorden's bound), runs cut at {cap}"
    )
    for col in ("p0", "margin", "round", "h (nats)", "mean", "median", "cut", "mean / bound"):
        table.add_column(col, justify="right")
    for p0, margin, n in sorted({(p0, m, n) for p0, _, m, n in SETTINGS}):
        d = CusumRateDetector.for_arl(p0, margin, args.h0_arl)
        runs = []
        for _ in range(args.h0_replications):
            d.reset()
            runs.append(rounds_to_alarm(d, p0, n, rng, cap))
        cut = float(np.mean(np.array(runs) == cap))
        mean = float(np.mean(runs))
        table.add_row(
            f"{p0:.1%}",
            f"{margin:.1%}",
            str(n),
            f"{d.threshold:.1f}",
            f"{'≥ ' if cut else ''}{mean:.0f}",
            f"{np.median(runs):.0f}",
            f"{cut:.1%}",
            f"{mean / args.h0_arl:.1f}",
        )
    return table


def history_table(args: argparse.Namespace, arl: float, rng: np.random.Generator) -> Table:
    p0, p1, margin, n = 0.002, 0.01, 0.002, 20
    reps = max(20, args.replications // 5)
    alpha = math.exp(-CusumRateDetector.for_arl(p0, margin, arl).threshold)
    table = Table(
        title=f"Probes to detect {p0:.1%} → {p1:.1%} ({n}/round) after a healthy history: "
        f"CUSUM (ARL ≥ {arl:.3g}) vs mixture SPRT at the same threshold (α = e^-h)"
    )
    for col in ("healthy rounds", "CUSUM mean", "mixture SPRT mean", "SPRT / CUSUM"):
        table.add_column(col, justify="right")
    for history in (0, 1_000, 10_000, 100_000):
        # CUSUM: one healthy chain, a change forked from it every 25 rounds after `history`
        chain = CusumRateDetector.for_arl(p0, margin, arl)
        for k in rng.binomial(n, p0, history).tolist():
            chain.update(k, n, T0)
        cusum = []
        for _ in range(reps):
            for k in rng.binomial(n, p0, 25).tolist():
                chain.update(k, n, T0)
            fork = CusumRateDetector.from_dict(chain.to_dict())
            cusum.append(n * rounds_to_alarm(fork, p1, n, rng, 10**7))
        # the mixture SPRT's evidence depends only on the totals: feed the history as one batch
        sprt = []
        for _ in range(reps):
            m = SequentialRateMonitor(p0, margin, alpha)
            m.update(int(rng.binomial(n * history, p0)), n * history)
            start = m.n_total
            while not m.update(int(rng.binomial(n, p1)), n).alarm:
                pass
            sprt.append(m.n_total - start)
        table.add_row(
            f"{history:,}",
            f"{np.mean(cusum):.0f}",
            f"{np.mean(sprt):.0f}",
            f"{np.mean(sprt) / np.mean(cusum):.1f}",
        )
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=500, help="runs per detection setting")
    ap.add_argument("--false-alarms-per-year", type=float, default=1.0)
    ap.add_argument("--monitors", type=int, default=200, help="cohort × metric monitors")
    ap.add_argument("--round-minutes", type=float, default=5.0)
    ap.add_argument("--h0-arl", type=int, default=100, help="ARL target of the H0 table")
    ap.add_argument("--h0-replications", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    console = Console(width=160)
    rounds_per_year = 365.25 * 24 * 60 / args.round_minutes
    arl = arl_for_false_alarms(args.false_alarms_per_year, rounds_per_year, args.monitors)
    console.print(detection_table(args, arl, rng))
    console.print(false_alarm_table(args, rng))
    console.print(history_table(args, arl, rng))


if __name__ == "__main__":
    main()
