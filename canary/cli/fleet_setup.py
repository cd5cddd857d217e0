"""The fleet a probing command talks to: the fleet file, or the embedded simulated fleet.

`canary run`, `canary gate` and `canary identity` start (or load) a fleet, resolve its
reference, pick the selected endpoints and open the store; doing it in one place keeps them
probing the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canary.config import EndpointConfig, FleetConfig
    from canary.store import Store


@dataclass(frozen=True)
class ProbingSetup:
    """What a probing command needs once the fleet is up."""

    fleet: FleetConfig
    """The fleet with its reference resolved."""
    targets: list[EndpointConfig]
    """The endpoints selected by name and labels."""
    store: Store


@contextmanager
def probing_setup(
    fleet: Path,
    *,
    sim: bool = False,
    reference: str | None = None,
    endpoints: Sequence[str] = (),
    select: Sequence[str] = (),
    db: str | None = None,
) -> Iterator[ProbingSetup]:
    """Load ``fleet`` (or serve the simulated one, ``sim``) for the block, with ``reference``
    resolved relative to the fleet file, the endpoints ``endpoints``/``select`` pick, and the
    store (``db``, else the fleet's database_url)."""
    from canary.config import load_fleet
    from canary.config.judged import with_resolved_reference
    from canary.config.selection import select_endpoints
    from canary.store import open_store

    context: AbstractContextManager[FleetConfig]
    fleet_dir = None
    if sim:
        from canary.sim.embedded import embedded_fleet

        context = embedded_fleet()
    else:
        context = nullcontext(load_fleet(fleet))
        fleet_dir = fleet.resolve().parent
    with context as loaded:
        config = with_resolved_reference(loaded, reference, fleet_dir=fleet_dir)
        targets = list(select_endpoints(config, tuple(endpoints), tuple(select)))
        store = open_store(db, config_url=config.database_url)
        yield ProbingSetup(config, targets, store)
