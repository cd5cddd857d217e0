"""Locating data shipped beside the code: migrations, probe suites, example configs.

In a source checkout they are top-level folders (`alembic/`, `probes/`, `config/`); an installed
wheel carries them inside the package as `canary/_migrations`, `canary/_probes`, `canary/_config`
(see `[tool.hatch.build.targets.wheel.force-include]` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent

_LOCATIONS = {
    "migrations": ("_migrations", "alembic"),
    "probes": ("_probes", "probes"),
    "config": ("_config", "config"),
}


def resource_dir(kind: str) -> Path:
    """The folder holding shipped ``kind`` data ("migrations", "probes" or "config")."""
    packaged, checkout = _LOCATIONS[kind]
    inside = _PACKAGE / packaged
    return inside if inside.is_dir() else _CHECKOUT / checkout
