"""The results database: SQLite for one machine, PostgreSQL for a fleet, schema by alembic.

Names are imported on first use, so `import canary.store` (and `canary --help`) does not pay
for SQLAlchemy and alembic.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from canary.store.engine import make_engine, resolve_database_url
    from canary.store.migrate import (
        current_revision,
        downgrade,
        head_revision,
        open_store,
        upgrade,
    )
    from canary.store.repository import Store
    from canary.store.retention import PruneReport, RetentionPolicy, prune
    from canary.store.views import RunSummary, ScoreView, StoredResult

_EXPORTS = {
    "Store": "canary.store.repository",
    "open_store": "canary.store.migrate",
    "upgrade": "canary.store.migrate",
    "downgrade": "canary.store.migrate",
    "current_revision": "canary.store.migrate",
    "head_revision": "canary.store.migrate",
    "resolve_database_url": "canary.store.engine",
    "make_engine": "canary.store.engine",
    "RunSummary": "canary.store.views",
    "StoredResult": "canary.store.views",
    "ScoreView": "canary.store.views",
    "RetentionPolicy": "canary.store.retention",
    "PruneReport": "canary.store.retention",
    "prune": "canary.store.retention",
}

__all__ = [
    "PruneReport",
    "RetentionPolicy",
    "RunSummary",
    "ScoreView",
    "Store",
    "StoredResult",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "open_store",
    "prune",
    "resolve_database_url",
    "upgrade",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'canary.store' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
