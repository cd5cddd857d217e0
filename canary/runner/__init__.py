"""The async runner: sends suites to endpoints and yields `ResultRecord`s."""

from canary.records import ERROR_KINDS, ResultRecord, TokenLogprob
from canary.runner.round import run_round, run_round_sync
from canary.runner.summary import EndpointStats, RoundSummary

__all__ = [
    "ERROR_KINDS",
    "EndpointStats",
    "ResultRecord",
    "RoundSummary",
    "TokenLogprob",
    "run_round",
    "run_round_sync",
]
