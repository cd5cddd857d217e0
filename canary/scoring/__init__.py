"""Scoring: stored results → detectors → the long-format score table."""

from canary.scoring.pipeline import (
    ScoringReport,
    judge_against_reference,
    missing_reference_note,
    score_stored,
)

__all__ = ["ScoringReport", "judge_against_reference", "missing_reference_note", "score_stored"]
