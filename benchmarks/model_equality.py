"""Served-model identity: detection rate and A/A false-positive rate of each identity test.

    python -m benchmarks.model_equality [--quick] [--seeds 200]

Variants of the shipped model are built in-process the way the simulated pools build them:
fp32 (a second copy: the A/A null), bf16, 8- and 4-bit group quantization
(`canary.sim.quantize`, group 32) and the substituted checkpoint (`canary/sim/model_substitute`,
when it has been trained). Each test runs on exactly the functions `canary identity` uses.

What is simulated, honestly: the endpoint is the variant's model called in-process, not over
HTTP. Greedy outputs and border choices are deterministic, so across seeds only the prompts
drawn change (resampled from a pool). Sampled completions are drawn once per variant into a
pool and each seed draws its samples from that pool without replacement, so seeds share
samples: rates are a little less variable than with fresh draws, not biased. fp32 against fp32
has exactly zero KL and no flips: its only randomness is in MMD and RUT. The figures for the
real servers and for MET's package are in issue 20; MET's paper reports a median power of 77%
at about 10 samples per prompt over its (much larger) model changes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from canary.identity import (
    TestOutcome,
    bucket_kl,
    combine,
    flip_test,
    kl_margin_test,
    rank_uniformity_test,
    stratified_mmd_test,
)
from canary.identity._collect import KL_TOKENS, SAMPLE_TOKENS, TOP_LOGPROBS
from canary.identity._prompts import shipped_prompts
from canary.identity._setup import border_inputs
from canary.identity._tracking import DEFAULT_TRACKING_TOLERANCE, align
from canary.reference import ReferenceModel, log_likelihoods, reference_samples, teacher_positions

ALPHA = 0.05
MET_PUBLISHED = "MET paper: 77% median power at ~10 samples/prompt (larger model changes)"


@dataclass
class Pool:
    """Everything drawn once from one variant."""

    name: str
    kl: np.ndarray  # per prompt: mean KL of its greedy continuation vs fp32
    samples: list[list[str]]  # per prompt: sampled completions
    loglik: list[np.ndarray]  # per prompt: fp32 log-likelihood of each sample
    flips: np.ndarray  # per border prompt: the variant's greedy choice differs
    first_top: list[dict[str, float]]  # per prompt: first greedy token's top-k logprobs


def load_variant(name: str) -> ReferenceModel | None:
    """The variant's model, or None when its checkpoint is not there (the substitute)."""
    if name == "bf16":
        return ReferenceModel.load(dtype="bfloat16")
    if name == "substitute":
        from canary.sim.train_substitute import substitute_dir

        where = substitute_dir()
        if not (where / "config.json").is_file():
            return None
        from transformers import AutoModelForCausalLM

        # The substitute ships weights only: it shares the served model's tokenizer.
        shipped = ReferenceModel.load()
        weights = AutoModelForCausalLM.from_pretrained(where).eval()
        return ReferenceModel(weights, shipped.tokenizer, where)
    model = ReferenceModel.load()
    if name in ("int8", "int4"):
        from canary.sim.quantize import quantize_model

        quantize_model(model.model, 8 if name == "int8" else 4, 32)
    return model


def draw_pool(
    name: str,
    variant: ReferenceModel,
    fp32: ReferenceModel,
    prompts: list[str],
    border: list[tuple[str, str]],
    n_samples: int,
    seed: int,
) -> Pool:
    kl = []
    greedy = variant.generate_greedy(prompts, KL_TOKENS, TOP_LOGPROBS)
    for prompt, out in zip(prompts, greedy, strict=True):
        rows = teacher_positions(fp32, prompt, out.tokens, out.text)
        values = [
            bucket_kl(ref, dict(t.top)) for t, (ref, _) in zip(out.tokens, rows, strict=False)
        ]
        kl.append(float(np.mean(values)) if values else 0.0)
    samples = reference_samples(variant, prompts, n_samples, max_tokens=SAMPLE_TOKENS, seed=seed)
    flat = log_likelihoods(
        fp32, [(p, s) for p, row in zip(prompts, samples, strict=True) for s in row]
    )
    loglik = [np.asarray(flat[i * n_samples : (i + 1) * n_samples]) for i in range(len(prompts))]
    firsts = variant.generate_greedy([p for p, _ in border], 1, 0)
    flips = np.array([(o.text != c) for o, (_, c) in zip(firsts, border, strict=True)])
    first_top = [dict(out.tokens[0].top) if out.tokens else {} for out in greedy]
    return Pool(name, np.asarray(kl), samples, loglik, flips, first_top)


def first_token_shift(pool: Pool, ref: Pool) -> float:
    """Median over prompts of the distance between the two sides' first-token top-k logprob
    vectors: what `logprob-tracking` measures, against its tolerance."""
    shifts = []
    for mine, theirs in zip(pool.first_top, ref.first_top, strict=True):
        x, y = align([mine], [theirs])
        shifts.append(float(np.linalg.norm(x[0] - y[0])))
    return float(np.median(shifts))


def one_seed(
    pool: Pool, ref: Pool, n_prompts: int, n_samples: int, rng: np.random.Generator
) -> dict[str, bool | str]:
    """Each test's decision on one draw, and the combined verdict."""
    chosen = rng.choice(len(pool.kl), size=n_prompts, replace=False)
    kl = kl_margin_test(
        pool.kl[chosen], alpha=ALPHA / 4, n_resamples=999, seed=int(rng.integers(1 << 30))
    )
    mine, theirs, scores, ranks_ref = [], [], [], []
    for i in chosen:
        a = rng.choice(len(pool.samples[i]), size=n_samples, replace=False)
        # The reference side needs 2 × n_samples: MMD's side and RUT's ranks, disjoint.
        b = rng.choice(len(ref.samples[i]), size=2 * n_samples, replace=False)
        mine.append([pool.samples[i][j] for j in a])
        theirs.append([ref.samples[i][j] for j in b[:n_samples]])
        scores.append(float(pool.loglik[i][a[0]]))
        ranks_ref.append(ref.loglik[i][b[n_samples:]])
    mmd = stratified_mmd_test(mine, theirs, n_permutations=99, seed=int(rng.integers(1 << 30)))
    rut = rank_uniformity_test(scores, ranks_ref, seed=int(rng.integers(1 << 30)))
    n_border = min(len(pool.flips), 4 * n_prompts)
    picked = rng.choice(len(pool.flips), size=n_border, replace=False)
    border = flip_test(int(pool.flips[picked].sum()), n_border, alpha=ALPHA / 4)
    outcomes = [
        TestOutcome("kl-margin", kl.p_different, p_same=kl.p_same),
        TestOutcome("mmd-hamming", mmd.p_value),
        TestOutcome("rut", rut.p_value),
        TestOutcome("border-flips", border.p_value, p_same=border.p_same),
    ]
    verdict, _ = combine(outcomes, ALPHA)
    return {
        "kl": kl.p_different <= ALPHA,
        "mmd": mmd.p_value <= ALPHA,
        "rut": rut.p_value <= ALPHA,
        "border": border.p_value <= ALPHA,
        "verdict": verdict,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small pools and grid.")
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    n_pool, n_draw = (30, 20) if args.quick else (60, 40)
    grid = [(10, 5), (10, 10), (30, 10)] if args.quick else [(10, 10), (25, 10), (50, 10), (50, 20)]
    console = Console(width=130)
    prompts = list(shipped_prompts()[:n_pool])
    fp32 = ReferenceModel.load()
    border = border_inputs(None, fp32, [])
    ref = draw_pool("fp32-ref", fp32, fp32, prompts, border, 2 * n_draw, seed=1)
    pools: list[Pool] = []
    skipped = []
    for name in ("fp32", "bf16", "int8", "int4", "substitute"):
        variant = fp32 if name == "fp32" else load_variant(name)
        if variant is None:
            skipped.append(name)
            continue
        pools.append(draw_pool(name, variant, fp32, prompts, border, n_draw, seed=2))
        drawn = pools[-1]
        console.print(
            f"{name}: mean KL {drawn.kl.mean():.2e}, border flips {drawn.flips.mean():.1%}, "
            f"median first-token shift {first_token_shift(drawn, ref):.3f} nats "
            f"(logprob-tracking tolerance {DEFAULT_TRACKING_TOLERANCE:g})"
        )
    table = Table(
        title=f"identity tests, rate of p ≤ {ALPHA} over {args.seeds} seeds "
        "(fp32, bf16: false positives; others: detection)"
    )
    for column in (
        "variant",
        "prompts",
        "samples",
        "kl-margin",
        "mmd",
        "rut",
        "border",
        "different",
        "same",
    ):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for pool in pools:
        for n_prompts, n_samples in grid:
            rng = np.random.default_rng(n_prompts * 1000 + n_samples)
            rows = [one_seed(pool, ref, n_prompts, n_samples, rng) for _ in range(args.seeds)]
            rate = {k: np.mean([r[k] for r in rows]) for k in ("kl", "mmd", "rut", "border")}
            diff = np.mean([r["verdict"] == "different" for r in rows])
            same = np.mean([r["verdict"] == "same" for r in rows])
            table.add_row(
                pool.name,
                str(n_prompts),
                str(n_samples),
                *(f"{rate[k]:.0%}" for k in ("kl", "mmd", "rut", "border")),
                f"{diff:.0%}",
                f"{same:.0%}",
            )
    console.print(table)
    console.print(
        f"border: {4}× the prompts (at most {len(border)}) border inputs; {MET_PUBLISHED}"
    )
    if skipped:
        console.print(f"skipped (checkpoint not there): {', '.join(skipped)}")


if __name__ == "__main__":
    main()
