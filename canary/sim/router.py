"""The front door: context-length routing with sticky sessions and a misrouting share.

Every decision is a hash of the session key, so a session keeps its pool (sticky) and a
misrouted session stays misrouted. A session is misrouted when its hash, read as a number in
[0, 1), is below `misroute_share`: raising the share only adds sessions, lowering it only
releases them. Requests without a session key draw a fresh random number each time.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass


def unit_hash(salt: str, key: str) -> float:
    """A stable number in [0, 1) for `key`."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Route:
    pool: str
    reason: str
    """`short`, `long` (prompt too long for short pools) or `misrouted`."""


class FrontDoor:
    """Picks a pool for each front-door request."""

    def __init__(
        self,
        short_pools: list[str],
        long_pool: str | None,
        *,
        misroute_share: float,
        short_context_max_tokens: int,
        sticky: bool = True,
    ) -> None:
        self.short_pools = short_pools
        self.long_pool = long_pool
        self.misroute_share = misroute_share
        self.short_context_max_tokens = short_context_max_tokens
        self.sticky = sticky
        self._round_robin = itertools.count()

    def route(self, session: str | None, prompt_tokens: int) -> Route:
        if self.long_pool is not None and prompt_tokens > self.short_context_max_tokens:
            return Route(self.long_pool, "long")
        key = session if self.sticky else None
        draw = unit_hash("misroute", key) if key is not None else random.random()
        if self.long_pool is not None and draw < self.misroute_share:
            return Route(self.long_pool, "misrouted")
        if key is not None:
            index = int(unit_hash("pool", key) * len(self.short_pools))
        else:
            index = next(self._round_robin) % len(self.short_pools)
        return Route(self.short_pools[index], "short")
