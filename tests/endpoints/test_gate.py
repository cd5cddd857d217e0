"""An endpoint's concurrency limit holds across rounds running in different threads and loops."""

from __future__ import annotations

import asyncio
import threading

from canary.endpoints.ratelimit import ConcurrencyGate


def test_limit_holds_across_threads_and_event_loops() -> None:
    gate = ConcurrencyGate(3)
    lock = threading.Lock()
    in_flight = peak = done = 0

    async def request() -> None:
        nonlocal in_flight, peak, done
        async with gate:
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            with lock:
                in_flight -= 1
                done += 1

    async def round_() -> None:
        await asyncio.gather(*(request() for _ in range(20)))

    threads = [threading.Thread(target=asyncio.run, args=(round_(),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert done == 80 and peak == 3 and gate.held == 0


def test_cancelled_waiters_do_not_leak_permits() -> None:
    gate = ConcurrencyGate(1)

    async def main() -> None:
        await gate.acquire()
        waiters = [asyncio.create_task(gate.acquire()) for _ in range(5)]
        await asyncio.sleep(0.01)
        for w in waiters[:4]:
            w.cancel()
        gate.release()
        await asyncio.wait_for(waiters[4], 1)
        gate.release()

    asyncio.run(main())
    assert gate.held == 0
