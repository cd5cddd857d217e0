"""The token bucket and the process-wide limiter registry."""

from __future__ import annotations

import asyncio
import time

import pytest

from canary.endpoints.ratelimit import TokenBucket, get_limiter


async def test_bucket_spaces_acquisitions() -> None:
    bucket = TokenBucket(rate=50.0)
    start = time.monotonic()
    await asyncio.gather(*(bucket.acquire() for _ in range(11)))
    # one token is available at once; the other 10 come at 20 ms intervals
    assert 0.18 <= time.monotonic() - start < 1.0


async def test_burst_allows_an_initial_batch() -> None:
    bucket = TokenBucket(rate=1.0, burst=5)
    start = time.monotonic()
    await asyncio.gather(*(bucket.acquire() for _ in range(5)))
    assert time.monotonic() - start < 0.1


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
