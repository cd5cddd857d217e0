"""Fixtures for alert tests: a live loopback receiver per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts.helpers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.stop()
