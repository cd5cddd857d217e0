"""Load the model stack once, before any slot thread needs it.

Two threads importing transformers for the first time at once can see a half-initialised
module (`ImportError: cannot import name 'AutoModelForCausalLM'`), which cost a daemon with
two schedules its first slot on every start. The daemon therefore imports scipy and loads the
shared reference model (torch and transformers with it, under the reference loader's import
lock) here, before its scheduler starts; slot threads then only find what is already loaded.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterable

from canary.config.reference import NO_REFERENCE_HINT, SHIPPED_MODEL, ReferenceConfig
from canary.probes.model import Suite

logger = logging.getLogger(__name__)

#: Modules imported on first use by scoring and the statistics (lazily, for a fast `--help`).
STAT_MODULES = ("numpy", "scipy.stats", "scipy.optimize")

_lock = threading.Lock()


def needs_reference(suites: Iterable[Suite]) -> bool:
    """Whether scoring these suites runs the reference model (greedy topk/routing, sampling)."""
    from canary.scoring.reference import SAMPLING_KINDS, TOPK_KINDS

    kinds = set(TOPK_KINDS) | set(SAMPLING_KINDS)
    return any(probe.kind in kinds for suite in suites for probe in suite.probes)


def preload_model_stack(*, reference: ReferenceConfig | bool | None) -> None:
    """Import the scoring stack and, with a model `reference` (True: the shipped one), load the
    shared reference model. None means the suites need a reference and none is configured: said
    once in the log, since their reference-based checks will not be made; False: not needed.

    Safe to call from several threads: the first does the work under the lock, the others wait
    for it and find everything loaded.
    """
    with _lock:
        for name in STAT_MODULES:
            importlib.import_module(name)
        if reference is None:
            logger.warning(NO_REFERENCE_HINT)
        if reference is True:
            reference = ReferenceConfig(model=SHIPPED_MODEL)
        if not reference or reference.model is None:
            return  # no reference, or a reference endpoint: no model to load
        from canary.scoring.reference import shared_reference_model

        model = shared_reference_model(reference.model, reference.device, reference.dtype)
        logger.info("reference model %s loaded", model.name)
