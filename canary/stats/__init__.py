"""Statistics over stored scores: impact rates now; tests against baselines build on these."""

from canary.stats.impact import CohortImpact, session_impact

__all__ = ["CohortImpact", "session_impact"]
