"""Scoring: stored results → detectors → the long-format score table."""

from canary.scoring.pipeline import ScoringReport, score_stored

__all__ = ["ScoringReport", "score_stored"]
