"""The fake OpenAI server fixture, defined once in `tests.support.fixtures`."""

from tests.support.fixtures import server

__all__ = ["server"]
