"""Token-bucket rate limiting, shared process-wide per endpoint name.

Overlapping rounds (a scheduled round still running when the next starts, or `canary run` beside
the daemon's loop in tests) must respect one limit per endpoint, so limiters live in a module-level
registry keyed by endpoint name rather than inside a client.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

__all__ = ["ConcurrencyGate", "TokenBucket", "get_gate", "get_limiter", "reset_limiters"]


class TokenBucket:
    """At most `rate` acquisitions per second on average, `burst` at once.

    Each `acquire` reserves a token under a thread lock and then sleeps until its reservation
    comes due, so the bucket is independent of any event loop: one instance can serve
    `asyncio.run` calls in several threads or one after another. A cancelled waiter forfeits its
    token, which errs on the side of sending less. ``clock`` and ``sleep`` are the time source
    and the wait (monotonic seconds), so tests can drive the bucket with a fake clock.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        """Change the rate in place; waiters already holding reservations keep them."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        with self._lock:
            self._refill(self._clock())
            self._rate = rate

    def reserve(self) -> float:
        """Take one token now (possibly going into debt); return seconds until it may be used."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._rate

    async def acquire(self) -> None:
        """Wait until one more request may start."""
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)

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
    """Forget every shared limiter and gate (tests, or a daemon reloading its fleet)."""
    with _registry_lock:
        _limiters.clear()
        _gates.clear()


class ConcurrencyGate:
    """At most `limit` requests in flight, across every thread and event loop of the process.

    An `asyncio.Semaphore` belongs to one loop, but the daemon runs overlapping rounds in
    scheduler threads, each with its own loop; an endpoint's concurrency limit must hold across
    all of them. Waiters queue in order; a released permit is handed to the next waiter on its
    own loop (`call_soon_threadsafe`), so no waiter polls.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._held = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def held(self) -> int:
        return self._held

    def set_limit(self, limit: int) -> None:
        """Change the limit; a higher one admits waiters at once, a lower one drains."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._lock:
            self._limit = limit
            while self._waiters and self._held < self._limit:
                self._held += 1
                self._hand_over_locked()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._held < self._limit and not self._waiters:
                self._held += 1
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))
                    raise
            if future.done() and not future.cancelled():
                self.release()  # granted just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        with self._lock:
            self._hand_over_locked()

    def _hand_over_locked(self) -> None:
        while self._waiters:
            loop, future = self._waiters.popleft()
            try:
                loop.call_soon_threadsafe(self._grant, future)
                return
            except RuntimeError:  # that waiter's loop is closed: try the next one
                continue
        self._held -= 1

    def _grant(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self.release()
        else:
            future.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


_gates: dict[str, ConcurrencyGate] = {}


def get_gate(name: str, limit: int) -> ConcurrencyGate:
    """The process-wide concurrency gate of endpoint `name` (its limit follows the config)."""
    with _registry_lock:
        gate = _gates.get(name)
        if gate is None:
            gate = _gates[name] = ConcurrencyGate(limit)
    if gate.limit != limit:
        gate.set_limit(limit)
    return gate
