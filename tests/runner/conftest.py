from __future__ import annotations

from collections.abc import Iterator

import pytest

from canary.endpoints import reset_limiters
from tests.support.openai_server import FakeOpenAI, serve_openai


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    """Rate limiters are process-wide by design; each test starts from none."""
    reset_limiters()
    yield
    reset_limiters()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with serve_openai() as fake:
        yield fake
