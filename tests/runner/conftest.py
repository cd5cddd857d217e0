"""The fake-server fixtures, defined once in `tests.support.fixtures`."""

from tests.support.fixtures import _fresh_limiters, server

__all__ = ["_fresh_limiters", "server"]
