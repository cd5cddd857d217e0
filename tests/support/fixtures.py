"""Fixtures shared by the test packages that talk to a fake OpenAI server (endpoints, runner).

A package opts in by importing them into its ``conftest.py``; they are defined only here.
"""

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
    """A fake OpenAI-compatible server on a free local port, for one test."""
    with serve_openai() as fake:
        yield fake
