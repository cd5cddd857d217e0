"""The reference runner: what a correct fp32 implementation of the served model would output.

Endpoints are compared against `ReferenceModel` (the shipped tiny model by default, or any local
Hugging Face causal LM). `ReferenceRunner` caches greedy outputs in the store, keyed by the
model fingerprint, so repeated rounds never recompute them. Positions are
`canary.records.TokenLogprob`, the type endpoints return. torch and transformers are imported
only when a model is loaded, so importing this package stays cheap.
"""

from canary.reference._cache import ReferenceCache, cache_key, canonical_params
from canary.reference._distributions import (
    log_likelihoods,
    reference_samples,
    teacher_positions,
)
from canary.reference._model import (
    ReferenceModel,
    ReferenceOutput,
    encode_prompt,
    fingerprint_dir,
)
from canary.reference._runner import ReferenceRunner, greedy_params
from canary.reference._teacher import continuation_logprobs

__all__ = [
    "ReferenceCache",
    "ReferenceModel",
    "ReferenceOutput",
    "ReferenceRunner",
    "cache_key",
    "canonical_params",
    "continuation_logprobs",
    "encode_prompt",
    "fingerprint_dir",
    "greedy_params",
    "log_likelihoods",
    "reference_samples",
    "teacher_positions",
]
