"""Short samples of the stored outputs behind an alert, for notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from canary.store.alert_evidence import FlaggedOutput

EXCERPT_CHARS = 240
#: Samples a notification carries per alert.
SAMPLES = 3


def evidence_samples(outputs: Sequence[FlaggedOutput]) -> list[dict[str, Any]]:
    """Each flagged output as an excerpt and the detector's evidence (a pruned output's error
    kind, or ``<pruned>``, stands in for its text)."""
    samples = []
    for output in outputs:
        text = output.output_text
        if text is None:
            text = f"<{output.error_kind or 'pruned'}>"
        samples.append(
            {
                "result_id": output.result_id,
                "excerpt": text[:EXCERPT_CHARS],
                "evidence": output.evidence,
            }
        )
    return samples
