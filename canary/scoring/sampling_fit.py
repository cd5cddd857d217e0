"""Sampling fit of one group of first tokens: against the reference model's exact distribution
(G-test, with tokens outside its support as exact evidence), or against a reference endpoint's
own samples (a two-sample test of the first-token counts).

Tokens are keyed like `TokenLogprob.top` (`canary.records.token_key`): by bytes where the server
sent them, so a token ending mid-character is never confused with another that shares its text.
A token with no bytes and an ambiguous text (``""``, ``"\ufffd"``) is binned as `PARTIAL`, and so
is every reference token that is not whole characters.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canary.records import TokenLogprob, ambiguous_token_text, token_key

#: A p-value below this flags the sampling group (the stats layer applies FDR control).
SAMPLING_ALPHA = 1e-3
#: Expected count below which first tokens are pooled into one "other" bin for the G-test.
MIN_EXPECTED = 5.0
#: The bin of tokens that are part of a character and whose bytes are not known.
PARTIAL = "<partial>"


def first_token_key(tokens: Sequence[TokenLogprob] | None) -> str | None:
    """The key the first generated token is counted under, or None when there is none."""
    if not tokens:
        return None
    first = tokens[0]
    if first.bytes is None and ambiguous_token_text(first.token):
        return PARTIAL
    return token_key(first.token, first.bytes)


def merge_partial(dist: Mapping[str, float]) -> dict[str, float]:
    """``dist`` with every byte-notation key (part of a character) folded into `PARTIAL`."""
    out: dict[str, float] = defaultdict(float)
    for key, p in dist.items():
        out[PARTIAL if key.startswith("<0x") else key] += p
    return dict(out)


@dataclass(frozen=True)
class Fit:
    """The group's verdict: p-value, whether flagged, and the evidence stored with it."""

    p_value: float
    flagged: bool
    evidence: dict[str, Any]


def fit_to_distribution(tokens: Sequence[str], expected_p: Mapping[str, float]) -> Fit:
    """G-test of ``tokens`` against ``expected_p``.

    A token outside the reference's support cannot come from a correct sampler: seeing one is
    exact evidence (p = 0). The G-test judges the in-support tokens only, so impossible tokens
    are never diluted among the legitimately rare ones in the pooled bin.
    """
    from scipy.stats import power_divergence

    outside = sum(1 for token in tokens if expected_p.get(token, 0.0) == 0.0)
    inside = [token for token in tokens if expected_p.get(token, 0.0) > 0.0]
    n = len(inside)
    observed = Counter(inside)
    bins = [t for t, p in expected_p.items() if p * n >= MIN_EXPECTED]
    other_p = max(1.0 - sum(expected_p[t] for t in bins), 0.0)
    obs = [observed.get(t, 0) for t in bins] + [n - sum(observed.get(t, 0) for t in bins)]
    exp = [expected_p[t] * n for t in bins] + [other_p * n]
    if exp[-1] < 1e-9 and obs[-1] == 0:  # no pooled mass and nothing landed there
        obs.pop()
        exp.pop()
    if outside:
        p_value = 0.0
    elif len(obs) < 2 or n < 2:
        p_value = 1.0
    else:
        total = sum(exp)
        exp = [e * n / total for e in exp]  # exact totals for scipy
        p_value = float(power_divergence(obs, exp, lambda_="log-likelihood").pvalue)
    evidence = {
        "samples": len(tokens),
        "outside_support": outside,
        "bins": [
            {"token": t, "observed": o, "expected": round(e, 2)}
            for t, o, e in zip([*bins, "<other>"], obs, exp, strict=False)
        ][:12],
    }
    return Fit(p_value, p_value < SAMPLING_ALPHA, evidence)


def fit_to_samples(tokens: Sequence[str], reference: Sequence[str]) -> Fit:
    """Two-sample test: do ``tokens`` and the reference endpoint's ``reference`` samples come
    from one distribution? A chi-squared test of homogeneity (G statistic) on the counts, with
    tokens rarer than `MIN_EXPECTED` in the pooled sample folded into one bin."""
    from scipy.stats import chi2_contingency

    ours, theirs = Counter(tokens), Counter(reference)
    pooled = ours + theirs
    total = len(tokens) + len(reference)
    share = min(len(tokens), len(reference)) / total if total else 0.0
    bins = [t for t, c in pooled.most_common() if c * share >= MIN_EXPECTED]
    rows = [[ours[t] for t in bins], [theirs[t] for t in bins]]
    rest = [len(tokens) - sum(rows[0]), len(reference) - sum(rows[1])]
    if any(rest):
        rows[0].append(rest[0])
        rows[1].append(rest[1])
    if len(rows[0]) < 2 or not tokens or not reference:
        p_value = 1.0
    else:
        p_value = float(chi2_contingency(rows, lambda_="log-likelihood").pvalue)
    labels = [*bins, "<other>"]
    evidence = {
        "samples": len(tokens),
        "reference_samples": len(reference),
        "bins": [
            {"token": t, "observed": o, "reference": r}
            for t, o, r in zip(labels, rows[0], rows[1], strict=False)
        ][:12],
    }
    return Fit(p_value, p_value < SAMPLING_ALPHA, evidence)
