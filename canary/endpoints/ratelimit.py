"""Token-bucket rate limiting, shared process-wide per endpoint name.

Overlapping rounds (a scheduled round still running when the next starts, or `canary run` beside
the daemon's loop in tests) must respect one limit per endpoint, so limiters live in a module-level
registry keyed by endpoint name rather than inside a client.
"""

from __future__ import annotations

import asyncio
import threading
import time

__all__ = ["TokenBucket", "get_limiter", "reset_limiters"]


class TokenBucket:
    """At most `rate` acquisitions per second on average, `burst` at once.

    Each `acquire` reserves a token under a thread lock and then sleeps until its reservation
    comes due, so the bucket is independent of any event loop: one instance can serve
    `asyncio.run` calls in several threads or one after another. A cancelled waiter forfeits its
    token, which errs on the side of sending less.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        """Change the rate in place; waiters already holding reservations keep them."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        with self._lock:
            self._refill(time.monotonic())
            self._rate = rate

    def reserve(self) -> float:
        """Take one token now (possibly going into debt); return seconds until it may be used."""
        with self._lock:
            now = time.monotonic()
            self._refill(now)
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._rate

    async def acquire(self) -> None:
        """Wait until one more request may start."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now


_limiters: dict[str, TokenBucket] = {}
_registry_lock = threading.Lock()


def get_limiter(name: str, rps: float | None) -> TokenBucket | None:
    """The process-wide limiter for endpoint `name`, or None when `rps` is None (unlimited).

    A later call with a different `rps` (the config was reloaded) updates the shared bucket.
    """
    if rps is None:
        return None
    with _registry_lock:
        limiter = _limiters.get(name)
        if limiter is None:
            limiter = _limiters[name] = TokenBucket(rps)
        elif limiter.rate != rps:
            limiter.set_rate(rps)
        return limiter


def reset_limiters() -> None:
    """Forget every shared limiter (tests, or a daemon reloading its fleet from scratch)."""
    with _registry_lock:
        _limiters.clear()
