"""Measured A/A false-positive rates of every two-sample test, and of the gate after FDR.

    python -m benchmarks.aa_false_positives [--seeds 2000] [--alpha 0.05]

Healthy simulated data on both sides (same distribution), many seeds. Per test it prints the
share of p < α (must be ≤ α: the test is valid), the share of ``regression`` verdicts (lower:
the margin also has to be exceeded) and the 99.9% binomial ceiling for a true rate of α. The
last rows run whole comparisons (20 cohorts × 4 metrics) and count gates that fail, with
Benjamini–Hochberg and, for contrast, with no correction.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.stats import binom

from canary.stats import (
    DEFAULT_POLICIES,
    TestResult,
    compare_continuous_binned,
    compare_distributions,
    compare_rates,
    decide,
    evaluate,
    gate,
    histogram_counts,
    histogram_edges,
)

TOKENS = [f"t{i}" for i in range(12)]
PROBS = np.array([0.45, 0.2, 0.1, 0.08, 0.05, 0.04, 0.03, 0.02, 0.01, 0.01, 0.005, 0.005])


def rate_case(
    metric: str, p: float, n_b: int, n_a: int
) -> Callable[[np.random.Generator], TestResult]:
    pol = DEFAULT_POLICIES[metric]
    return lambda rng: compare_rates(
        int(rng.binomial(n_b, p)), n_b, int(rng.binomial(n_a, p)), n_a, pol
    )


def cont_case(
    metric: str, draw: Callable[[np.random.Generator, int], np.ndarray], n_b: int, n_a: int
) -> Callable[[np.random.Generator], TestResult]:
    pol, edges = DEFAULT_POLICIES[metric], histogram_edges(metric)
    return lambda rng: compare_continuous_binned(
        edges, histogram_counts(edges, draw(rng, n_b)), histogram_counts(edges, draw(rng, n_a)), pol
    )


def dist_case(n_b: int, n_a: int) -> Callable[[np.random.Generator], TestResult]:
    pol = DEFAULT_POLICIES["sampling_first_token"]

    def run(rng: np.random.Generator) -> TestResult:
        b, a = rng.multinomial(n_b, PROBS), rng.multinomial(n_a, PROBS)
        return compare_distributions(
            dict(zip(TOKENS, b.tolist(), strict=True)),
            dict(zip(TOKENS, a.tolist(), strict=True)),
            pol,
        )

    return run


def agreement(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.7, 1.0, rng.beta(8, 1.5, n))


CASES: dict[str, Callable[[np.random.Generator], TestResult]] = {
    "unexpected_script 0.1%, 5000/2000": rate_case("unexpected_script", 0.001, 5000, 2000),
    "unexpected_script 0%, 5000/2000": rate_case("unexpected_script", 0.0, 5000, 2000),
    "fixed_fail 3%, 2000/1000": rate_case("fixed_fail", 0.03, 2000, 1000),
    "error_rate 30%, 80/40": rate_case("error_rate", 0.3, 80, 40),
    "char_entropy N(4.3,0.4), 3000/1000": cont_case(
        "char_entropy", lambda r, n: r.normal(4.3, 0.4, n), 3000, 1000
    ),
    "latency_ms lognormal, 3000/1000": cont_case(
        "latency_ms", lambda r, n: r.lognormal(6.5, 0.6, n), 3000, 1000
    ),
    "top1_agreement (70% at 1.0), 2000/500": cont_case("top1_agreement", agreement, 2000, 500),
    "sampling_first_token 12 cats, 1000/300": dist_case(1000, 300),
}


def gate_run(rng: np.random.Generator, correct: bool) -> bool:
    edges = histogram_edges("char_entropy")
    results = []
    for _ in range(20):
        for m, p in {"unexpected_script": 0.001, "fixed_fail": 0.03, "degenerate": 0.004}.items():
            results.append(
                compare_rates(
                    int(rng.binomial(3000, p)),
                    3000,
                    int(rng.binomial(1500, p)),
                    1500,
                    DEFAULT_POLICIES[m],
                )
            )
        results.append(
            compare_continuous_binned(
                edges,
                histogram_counts(edges, rng.normal(4.3, 0.4, 600)),
                histogram_counts(edges, rng.normal(4.3, 0.4, 300)),
                DEFAULT_POLICIES["char_entropy"],
            )
        )
    if correct:
        return gate(evaluate(results)).status == "regression"
    return any(decide(r, r.p_value, DEFAULT_POLICIES[r.metric]) == "regression" for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2000)
    ap.add_argument("--alpha", type=float, default=0.05)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ceiling = binom.ppf(0.999, args.seeds, args.alpha) / args.seeds
    table = Table(
        title=f"A/A false positives, {args.seeds} seeds, α={args.alpha} "
        f"(ceiling {ceiling:.3f} = 99.9% binomial bound at α)"
    )
    for col in ("case", "p < α", "regression verdicts", "ok"):
        table.add_column(col, justify="right")
    for name, case in CASES.items():
        results = [case(rng) for _ in range(args.seeds)]
        fp = np.mean([r.p_value < args.alpha for r in results])
        reg = np.mean(
            [
                decide(r, r.p_value, DEFAULT_POLICIES[r.metric], args.alpha) == "regression"
                for r in results
            ]
        )
        table.add_row(name, f"{fp:.3f}", f"{reg:.3f}", "yes" if fp <= ceiling else "NO")
    runs = max(args.seeds // 10, 50)
    g_ceiling = binom.ppf(0.999, runs, args.alpha) / runs
    for correct in (True, False):
        rate = np.mean([gate_run(rng, correct) for _ in range(runs)])
        label = "BH across 80 tests" if correct else "no correction"
        table.add_row(
            f"gate, 20 cohorts × 4 metrics, {label} ({runs} comparisons)",
            "—",
            f"{rate:.3f}",
            ("yes" if rate <= g_ceiling else "NO") if correct else "(contrast)",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
