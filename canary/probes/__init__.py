"""Probe suites: versioned data files of fixed requests and what their checks need."""

from canary.probes.loading import list_suites, load_suite, resolve_suite_path
from canary.probes.model import Message, Probe, SamplingParams, Suite, probe_kinds

__all__ = [
    "Message",
    "Probe",
    "SamplingParams",
    "Suite",
    "list_suites",
    "load_suite",
    "probe_kinds",
    "resolve_suite_path",
]
