"""Fault mechanisms of the simulated fleet, each a real change to the logits→token path."""

from canary.sim.faults.approx_topk import approx_topk, dropped_prefix
from canary.sim.faults.corrupt_logits import LogitCorruptor, target_token_ids

__all__ = ["LogitCorruptor", "approx_topk", "dropped_prefix", "target_token_ids"]
