"""Does the deploy gate decide? Healthy pass, A/A false regression, detection, probes to decision.

A 20-cohort × 6-metric family (the real policies of first_divergence, greedy_not_argmax,
unexpected_script, error_rate, fixed_fail and top1_agreement) is simulated round by round and
fed through the real code: `canary.compare.sequential_gate` (what `canary gate` runs, paired
and unpaired) and, beside it, today's fixed-sample `canary.compare.gate.compare` (Fisher +
Benjamini–Hochberg) on the whole budget at once.

The data model, stated so the numbers can be judged: each cohort runs a fixed suite of
``PROBES`` greedy probes per round. Greedy outputs are mostly deterministic, so most flags belong
to a probe (flagged on every run: ``sticky``) and a few are noise (``noisy``, per run); errors
are per request. Before: ``BUDGET`` results per cohort (the same probes, so every after result
has a partner). Scenarios: healthy (A/A); one cohort's first_divergence 0.2% → 1.0% (extra flags
hit random requests, as a misrouting would); one cohort's top-1 agreement 0.99 → 0.90.

Run: ``python -m benchmarks.gate_power [--quick] [--seeds N]``. The last line is
``healthy_pass=F false_regression=F detect=F median_probes=N`` for the sequential paired gate.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

COHORTS = 20
PROBES = 400
BUDGET = 4000
ROUNDS = BUDGET // PROBES
ALPHA = 0.05
METRICS = (
    "first_divergence",
    "greedy_not_argmax",
    "unexpected_script",
    "error_rate",
    "fixed_fail",
    "top1_agreement",
)
#: rate metric → (sticky share of probes, noisy per-run rate, per-request rate)
RATE_MODEL = {
    "first_divergence": (0.0015, 0.0005, 0.0),
    "greedy_not_argmax": (0.0, 0.0, 0.0),
    "unexpected_script": (0.0, 0.0005, 0.0),
    "error_rate": (0.0, 0.0, 0.001),
    "fixed_fail": (0.01, 0.001, 0.0),
}
AGREEMENT_BINS = 100


@dataclass
class Cohort:
    """One cohort's per-probe propensities and its before runs."""

    sticky: dict[str, np.ndarray]
    agreement: np.ndarray
    before: dict[str, np.ndarray]


def _runs(
    rng: np.random.Generator, c: Cohort, rounds: int, fault: str | None
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for metric, (_, noisy, per_request) in RATE_MODEL.items():
        flags = np.repeat(c.sticky[metric][None, :], rounds, axis=0).astype(float)
        flags = np.maximum(flags, rng.random((rounds, PROBES)) < noisy + per_request)
        if fault == "rate" and metric == "first_divergence":
            flags = np.maximum(flags, rng.random((rounds, PROBES)) < 0.008)
        out[metric] = flags
    agree = np.repeat(c.agreement[None, :], rounds, axis=0)
    if fault == "agreement":
        agree = agree * (0.90 / 0.99)
    out["top1_agreement"] = _binned(agree)
    return out


def _binned(values: np.ndarray) -> np.ndarray:
    """Bin midpoints of [0, 1] on the declared 100 bins (what the store aggregates keep)."""
    idx = np.clip((values * AGREEMENT_BINS).astype(int), 0, AGREEMENT_BINS - 1)
    return (idx + 0.5) / AGREEMENT_BINS


def _cohort(rng: np.random.Generator) -> Cohort:
    sticky = {m: rng.random(PROBES) < s for m, (s, _, _) in RATE_MODEL.items()}
    # Top-1 agreement per probe: most probes agree everywhere, a few diverge late or early.
    agreement = np.where(rng.random(PROBES) < 0.9, 1.0, rng.beta(9, 1, PROBES))
    c = Cohort(sticky, agreement, {})
    c.before = _runs(rng, c, ROUNDS, None)
    return c


def _sample(values: np.ndarray) -> Any:
    from canary.stats.anytime import Sample

    uniq, counts = np.unique(values.ravel(), return_counts=True)
    return Sample.of(uniq, counts)


def sequential(
    rng: np.random.Generator, fault: str | None, paired: bool, policies: Mapping
) -> tuple[str, int]:
    """One simulated `canary gate`: (status, probes per cohort at the stop)."""
    from canary.compare.sequential_gate import MetricEvidence, run_sequential_gate

    cohorts = [_cohort(rng) for _ in range(COHORTS)]
    after = [_runs(rng, c, ROUNDS, fault if i == 0 else None) for i, c in enumerate(cohorts)]
    done = [0]

    def next_round() -> Any:
        r = done[0] + 1
        if r > ROUNDS:
            return None
        done[0] = r
        evidence = {}
        for i, c in enumerate(cohorts):
            for m in METRICS:
                b, a = c.before[m], after[i][m][:r]
                diffs = _sample((a - b[:r] + 1) / 2) if paired else None
                evidence[(f"c{i:02d}", m)] = MetricEvidence(
                    policies[m], _sample(b), _sample(a), diffs
                )
        return evidence, r * PROBES

    decision = run_sequential_gate(next_round, policies, alpha=ALPHA, max_probes=BUDGET)
    return decision.status, decision.probes


def fixed(rng: np.random.Generator, fault: str | None, policies: Mapping[str, Any]) -> str:
    """Today's fixed-sample compare on the whole budget: Fisher + BH."""
    from canary.compare.aggregate import Aggregate, CohortData
    from canary.compare.gate import compare
    from canary.stats import DEFAULT_BINNING
    from canary.stats.kinds import Histogram, RateCounts

    binning = DEFAULT_BINNING["top1_agreement"].model_dump()
    sides = (Aggregate(by=("endpoint",)), Aggregate(by=("endpoint",)))
    for i in range(COHORTS):
        c = _cohort(rng)
        runs = (c.before, _runs(rng, c, ROUNDS, fault if i == 0 else None))
        for side, data in zip(sides, runs, strict=True):
            cd = CohortData({"endpoint": f"c{i:02d}"})
            for m in METRICS[:-1]:
                cd.metrics[m] = RateCounts(k=int(data[m].sum()), n=data[m].size)
            idx = np.clip((data["top1_agreement"] * AGREEMENT_BINS).astype(int), 0, 99).ravel()
            counts = np.bincount(idx, minlength=AGREEMENT_BINS).tolist()
            cd.metrics["top1_agreement"] = Histogram(n=idx.size, counts=counts, binning=binning)
            side.cohorts[f"endpoint=c{i:02d}"] = cd
    return compare(sides[0], sides[1], policies, alpha=ALPHA).gate.status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 seeds instead of 100")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args(argv)
    seeds = args.seeds or (20 if args.quick else 100)
    from canary.stats import DEFAULT_POLICIES

    policies = {m: DEFAULT_POLICIES[m] for m in METRICS}
    for m in METRICS:
        p = policies[m]
        print(
            f"# {m}: {p.kind} {p.direction} margin {p.margin:g} (rel {p.relative_margin:g})"
            f"{' critical' if p.critical else ''}"
        )
    rows: dict[str, dict[str, list]] = {}
    for name in ("fixed Fisher+BH", "sequential unpaired", "sequential paired"):
        rows[name] = {s: [] for s in ("healthy", "rate", "agreement")}
    for seed in range(seeds):
        for scenario, fault in (("healthy", None), ("rate", "rate"), ("agreement", "agreement")):
            rng = np.random.default_rng([seed, len(scenario)])
            rows["fixed Fisher+BH"][scenario].append((fixed(rng, fault, policies), BUDGET))
            for name, paired in (("sequential unpaired", False), ("sequential paired", True)):
                rng = np.random.default_rng([seed, len(scenario)])
                rows[name][scenario].append(sequential(rng, fault, paired, policies))
    print(
        f"{COHORTS} cohorts × {len(METRICS)} metrics, budget {BUDGET} probes/cohort, "
        f"{seeds} seeds, α = {ALPHA}"
    )
    print(
        f"{'design':<22}{'healthy pass':>13}{'A/A false reg':>14}{'detect 0.2→1%':>14}"
        f"{'detect top1':>12}{'median probes':>14}"
    )
    summary = {}
    for name, by in rows.items():

        def share(scenario: str, status: str, by: dict[str, list[Any]] = by) -> float:
            got = by[scenario]
            return sum(s == status for s, _ in got) / len(got)

        probes = [p for got in by.values() for _, p in got]
        hp, fr = share("healthy", "pass"), share("healthy", "regression")
        dr, da = share("rate", "regression"), share("agreement", "regression")
        med = int(statistics.median(probes))
        summary[name] = (hp, fr, min(dr, da), med)
        print(f"{name:<22}{hp:>13.3f}{fr:>14.3f}{dr:>14.3f}{da:>12.3f}{med:>14d}")
    hp, fr, det, med = summary["sequential paired"]
    print(f"healthy_pass={hp:.3f} false_regression={fr:.3f} detect={det:.3f} median_probes={med}")


if __name__ == "__main__":
    main()
