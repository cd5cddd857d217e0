"""Probe suites: versioned data files of fixed requests and what their checks need."""

from canary.probes.loading import list_suites, load_suite, resolve_suite_path
from canary.probes.model import PROBE_KINDS, Message, Probe, SamplingParams, Suite

__all__ = [
    "PROBE_KINDS",
    "Message",
    "Probe",
    "SamplingParams",
    "Suite",
    "list_suites",
    "load_suite",
    "resolve_suite_path",
]
