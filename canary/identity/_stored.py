"""`canary identity --stored`: decide from what the canary already measured, sending nothing.

Every greedy topk/routing probe the daemon sends is scored against the reference by the
`model_equality` detector (its mean next-token KL from the reference). Over a window, those
per-probe KLs are the kl-margin test's data: the same margin, decided from the stored rollups
(`canary.compare.served`), with the probes that differ most as evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from canary.identity._analyze import Evidence, kl_margin_outcome
from canary.identity._check import IdentityReport
from canary.identity._verdict import combine
from canary.stats.equivalence import DEFAULT_KL_MARGIN

if TYPE_CHECKING:
    from canary.store import Store

#: Fewer stored probes than this leave the stored check inconclusive (send the suite instead).
MIN_STORED_PROBES = 20
EVIDENCE = 5


def check_stored(
    store: Store,
    endpoint: str,
    since: datetime,
    *,
    until: datetime | None = None,
    alpha: float = 0.05,
    margin: float = DEFAULT_KL_MARGIN,
) -> IdentityReport:
    """The identity verdict of ``endpoint`` against the reference from its stored
    `model_equality` scores in [since, until)."""
    from canary.compare.served import KL_METRIC, served_models
    from canary.records import ResultFilter
    from canary.store.reports import worst_result_ids

    window = ResultFilter(labels={"endpoint": endpoint}, since=since, until=until)
    rows = served_models(store, window, alpha=alpha, margin=margin, label="endpoint")
    described = f"stored probes since {since:%Y-%m-%d %H:%M} UTC"
    if not rows or rows[0].probes < MIN_STORED_PROBES:
        found = rows[0].probes if rows else 0
        note = (
            f"{found} {described} carry model_equality scores (at least {MIN_STORED_PROBES} "
            "needed): greedy topk/routing rounds judged by a reference make them; widen "
            "--stored, or drop it to send the identity suite"
        )
        return IdentityReport(endpoint, "reference", "inconclusive", alpha, [], notes=[note])
    row = rows[0]
    outcome = kl_margin_outcome(
        p_different=row.p_different,
        p_same=row.p_same,
        samples=row.probes,
        mean_kl=row.mean_kl,
        p99_kl=row.p99_kl,
        kl_upper=row.kl_upper,
        margin=margin,
        alpha=alpha,
        data=f"{row.probes} {described} (model_equality: mean KL per probe)",
        bounds="one-sided t-bounds",
        mismatch_rate=row.mismatched / row.judged if row.judged else 0.0,
    )
    verdict, level = combine([outcome], alpha)
    evidence = []
    for result_id in worst_result_ids(
        store, window, row.cohort_ids, KL_METRIC, "highest", EVIDENCE
    ):
        result = store.get_result(result_id)
        score = next((s for s in result.scores if s.metric == KL_METRIC), None)
        value = score.value if score is not None and score.value is not None else 0.0
        evidence.append(
            Evidence("kl", result.probe_id, None, value, f"result {result_id}", "reference")
        )
    notes = [
        f"from stored results: `canary show ID` for each; {row.mismatched} of {row.judged} "
        "probes beyond numeric noise (model_mismatch)"
    ]
    return IdentityReport(endpoint, "reference", verdict, level, [outcome], evidence, None, notes)
