"""The detector registry: built-ins register here, third parties through ``canary.detectors``.

An entry point names a `Detector` subclass, e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points."canary.detectors"]
    shouting = "my_pkg.shouting:Shouting"
"""

from __future__ import annotations

from typing import Any, TypeVar

from canary.detectors.base import Detector
from canary.errors import ConfigError
from canary.registry import Registry

detectors: Registry[type[Detector]] = Registry("detector", "canary.detectors")

D = TypeVar("D", bound=type[Detector])


def register_detector(cls: D) -> D:
    """Class decorator: register a `Detector` subclass under its ``name``."""
    detectors.register(cls.name)(cls)
    return cls


def build_detector(name: str, **args: Any) -> Detector:
    """An instance of the detector called ``name`` with ``args`` (defaults for the rest)."""
    cls = detectors.get(name)
    if getattr(cls, "name", None) != name:
        raise ConfigError(
            f"detector {name!r} is registered as {cls!r}, whose name is "
            f"{getattr(cls, 'name', None)!r}; make the entry-point name match the class's name"
        )
    try:
        return cls(**args)
    except TypeError as exc:
        raise ConfigError(f"detector {name!r}: bad arguments {args!r}: {exc}") from None
