"""The token bucket and the process-wide limiter registry."""

from __future__ import annotations

import asyncio

import pytest

from canary.endpoints.ratelimit import TokenBucket, get_limiter


class FakeClock:
    """Monotonic seconds that move only when told to; `sleep` records each wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def bucket(clock: FakeClock, rate: float, burst: float = 1.0) -> TokenBucket:
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


async def test_bucket_spaces_acquisitions() -> None:
    clock = FakeClock()
    limited = bucket(clock, rate=50.0)
    await asyncio.gather(*(limited.acquire() for _ in range(11)))
    # one token is available at once; the other 10 wait 20 ms more each, in order
    assert clock.slept == pytest.approx([0.02 * i for i in range(1, 11)])


async def test_burst_allows_an_initial_batch() -> None:
    clock = FakeClock()
    limited = bucket(clock, rate=1.0, burst=5)
    await asyncio.gather(*(limited.acquire() for _ in range(5)))
    assert clock.slept == []
    await limited.acquire()
    assert clock.slept == pytest.approx([1.0])


def test_tokens_come_back_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    limited = bucket(clock, rate=10.0, burst=2)
    assert [limited.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])
    clock.now += 0.25  # pays the debt (0.1 s), then refills 1.5 tokens
    assert [limited.reserve() for _ in range(3)] == pytest.approx([0.0, 0.05, 0.15])
    clock.now += 3600  # a long idle spell refills to the burst, never beyond
    assert [limited.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_a_new_rate_applies_to_later_reservations() -> None:
    clock = FakeClock()
    limited = bucket(clock, rate=1.0)
    assert limited.reserve() == 0.0
    limited.set_rate(4.0)
    assert limited.reserve() == pytest.approx(0.25)


def test_bucket_survives_several_event_loops() -> None:
    bucket = TokenBucket(rate=100.0)
    for _ in range(3):
        asyncio.run(bucket.acquire())


def test_limiters_are_shared_by_name() -> None:
    a = get_limiter("gpu-a", 5.0)
    assert a is not None
    assert get_limiter("gpu-a", 5.0) is a
    assert get_limiter("gpu-b", 5.0) is not a
    assert get_limiter("gpu-c", None) is None


def test_a_new_rate_updates_the_shared_limiter() -> None:
    a = get_limiter("gpu-a", 5.0)
    assert get_limiter("gpu-a", 10.0) is a and a is not None and a.rate == 10.0


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0.5)])
def test_bad_bucket_arguments(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)
