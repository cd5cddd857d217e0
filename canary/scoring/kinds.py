"""Probe kinds judged against the reference (shared by the model and the endpoint scorers)."""

TOPK_KINDS = ("topk", "routing")
"""Greedy probes compared position by position with the reference's continuation."""
SAMPLING_KINDS = ("sampling",)
"""Probes sent n times whose first tokens are tested against the reference's."""
