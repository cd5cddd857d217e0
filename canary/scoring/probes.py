"""Probe models by probe row id, shared by the per-result and the reference scorers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from canary.probes.model import Probe

if TYPE_CHECKING:
    from canary.store import Store


class ProbeCache:
    """Probe models by probe row id, parsed once per scoring pass."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._probes: dict[int, Probe] = {}

    def load(self, ids: Iterable[int]) -> None:
        """Read and parse the probes among `ids` not seen yet (one query)."""
        from canary.store.scores import probe_specs

        missing = {i for i in ids if i not in self._probes}
        if missing:
            for row_id, spec in probe_specs(self._store, sorted(missing)).items():
                self._probes[row_id] = Probe.model_validate(spec)

    def get(self, row_id: int) -> Probe:
        """A probe `load` has read."""
        return self._probes[row_id]
