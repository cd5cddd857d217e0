"""MMD with a Hamming kernel over characters, stratified by prompt (Model Equality Testing).

The statistic is MET's `mmd_hamming` (Gao et al., ICLR 2025; `model_equality_testing/tests.py`
in the `model-equality-testing` package): completions as code-point arrays padded to a common
length L with -1, K(x, y) = Σ_i 1[x_i = y_i] between completions of the same prompt and 0
across prompts, normalised so K(x, x) = 1, the unbiased estimate
ΣK_XX/n_XX − 2ΣK_XY/n_XY + ΣK_YY/n_YY over same-prompt pairs (self-pairs left out).

Why not the package itself: version 0.0.2 imports torch, transformers and matplotlib at import,
and its permutation shuffles completions across prompts, which the issue measured as
conservative on a balanced design. Here labels are permuted within each prompt, so the null
(same distribution for every prompt) is exact. scipy's `permutation_test` has no strata, so
the permutations are drawn here, all at once per prompt, on kernel matrices computed once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MMDTest:
    """MMD statistic over all prompts and its within-prompt permutation p-value."""

    mmd: float
    p_value: float
    prompts: int
    samples: int
    per_prompt: dict[int, float]
    """Prompt index → its own MMD share (for evidence: the prompts that differ most)."""


def _codepoints(texts: Sequence[str], length: int) -> np.ndarray:
    out = np.full((len(texts), length), -1, dtype=np.int64)
    for i, text in enumerate(texts):
        cps = [ord(c) for c in text[:length]]
        out[i, : len(cps)] = cps
    return out


def _kernel(x: np.ndarray) -> np.ndarray:
    k = (x[:, None, :] == x[None, :, :]).sum(-1).astype(float)
    diag = np.sqrt(np.diag(k))
    diag[diag == 0] = 1.0
    return k / np.outer(diag, diag)


def _sums(k: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Off-diagonal within-X, within-Y and cross sums of `k` for each row of 0/1 `labels`."""
    x = labels.astype(float)
    y = 1.0 - x
    kx, ky = x @ k, y @ k
    diag = np.diag(k)
    return (kx * x).sum(1) - x @ diag, (kx * y).sum(1), (ky * y).sum(1) - y @ diag


def stratified_mmd_test(
    a: Sequence[Sequence[str]],
    b: Sequence[Sequence[str]],
    *,
    n_permutations: int = 1000,
    max_chars: int = 64,
    seed: int = 0,
) -> MMDTest:
    """MET's Hamming MMD between samples `a[p]` and `b[p]` of each prompt p, and its p-value.

    Prompts with fewer than two samples on either side are skipped (no within-side pair).
    """
    rng = np.random.default_rng(seed)
    kernels: list[tuple[int, np.ndarray, int, int]] = []
    for index, (xs, ys) in enumerate(zip(a, b, strict=True)):
        if len(xs) < 2 or len(ys) < 2:
            continue
        texts = [*xs, *ys]
        length = max(1, min(max_chars, max(len(t) for t in texts)))
        kernels.append((index, _kernel(_codepoints(texts, length)), len(xs), len(ys)))
    if not kernels:
        return MMDTest(math.nan, 1.0, 0, 0, {})
    n_xx = sum(n * (n - 1) for _, _, n, _ in kernels)
    n_yy = sum(m * (m - 1) for _, _, _, m in kernels)
    n_xy = sum(n * m for _, _, n, m in kernels)

    observed = 0.0
    shares: list[float] = []
    permuted = np.zeros(n_permutations)
    for _, k, n, m in kernels:
        base = np.arange(n + m) < n
        xx, xy, yy = _sums(k, base[None, :])
        share = float(xx[0] / n_xx - 2 * xy[0] / n_xy + yy[0] / n_yy)
        shares.append(share)
        observed += share
        if n_permutations:
            labels = rng.permuted(np.tile(base, (n_permutations, 1)), axis=1)
            pxx, pxy, pyy = _sums(k, labels)
            permuted += pxx / n_xx - 2 * pxy / n_xy + pyy / n_yy
    exceed = int(np.sum(permuted >= observed - 1e-12))
    return MMDTest(
        mmd=observed,
        p_value=(exceed + 1) / (n_permutations + 1),
        prompts=len(kernels),
        samples=sum(n + m for _, _, n, m in kernels),
        per_prompt={index: share for (index, _, _, _), share in zip(kernels, shares, strict=True)},
    )
