"""Served-model identity: is an endpoint serving the trusted model, or something else?

A quantized build, a stale checkpoint or another model after a bad deploy all answer the same
prompts a little differently. `check_identity` sends a small suite through the normal runner
and decides `same` / `different` / `inconclusive` from the tests the answers allow: KL on
top-k logprobs with an equivalence margin, first-token logprob tracking, MET's Hamming MMD,
the rank-uniformity test and border inputs. The statistics are pure functions over arrays and
are exported for the benchmark and the tests.
"""

from canary.identity._border import FlipTest, flip_test
from canary.identity._border_suite import BorderPrompt, border_suite, find_border_prompts
from canary.identity._check import IdentityReport, check_identity
from canary.identity._kl import KLSummary, bucket_kl, summarize
from canary.identity._mmd import MMDTest, stratified_mmd_test
from canary.identity._rut import RUTest, randomized_ranks, rank_uniformity_test
from canary.identity._stored import check_stored
from canary.identity._tracking import TrackingTest, tracking_test
from canary.identity._verdict import EXIT_CODES, TestOutcome, Verdict, combine
from canary.stats.equivalence import DEFAULT_KL_MARGIN, MarginTest, kl_margin_test

__all__ = [
    "DEFAULT_KL_MARGIN",
    "EXIT_CODES",
    "BorderPrompt",
    "FlipTest",
    "IdentityReport",
    "KLSummary",
    "MMDTest",
    "MarginTest",
    "RUTest",
    "TestOutcome",
    "TrackingTest",
    "Verdict",
    "border_suite",
    "bucket_kl",
    "check_identity",
    "check_stored",
    "combine",
    "find_border_prompts",
    "flip_test",
    "kl_margin_test",
    "randomized_ranks",
    "rank_uniformity_test",
    "stratified_mmd_test",
    "summarize",
    "tracking_test",
]
