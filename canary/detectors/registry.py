"""The detector registry: built-ins register here, third parties through ``canary.detectors``.

An entry point names a `Detector` (or `GroupDetector`) subclass, e.g. in a plugin's
``pyproject.toml``::

    [project.entry-points."canary.detectors"]
    shouting = "my_pkg.shouting:Shouting"

Everything else about a detector's metrics is read from the registry: `declared_metrics` (their
kinds, policies, bins and explanations) and `declared_probe_kinds` (what probes may be).
"""

from __future__ import annotations

from typing import Any, TypeVar

from canary.detectors.base import Detector, GroupDetector
from canary.detectors.metrics import Metric
from canary.errors import ConfigError
from canary.registry import Registry

AnyDetector = Detector | GroupDetector

detectors: Registry[type[Any]] = Registry("detector", "canary.detectors")

#: Probe kinds no detector needs to declare: probes only the always-on detectors judge.
BASE_PROBE_KINDS = ("generic",)

D = TypeVar("D", bound=type[Any])

_order: list[str] = []
"""Registration order of the built-ins: the order reports list their metrics in."""


def register_detector(cls: D) -> D:
    """Class decorator: register a `Detector` or `GroupDetector` subclass under its ``name``."""
    detectors.register(cls.name)(cls)
    if cls.name not in _order:
        _order.append(cls.name)
    return cls


def build_detector(name: str, **args: Any) -> AnyDetector:
    """An instance of the detector called ``name`` with ``args`` (defaults for the rest)."""
    cls = detectors.get(name)
    if getattr(cls, "name", None) != name:
        raise ConfigError(
            f"detector {name!r} is registered as {cls!r}, whose name is "
            f"{getattr(cls, 'name', None)!r}; make the entry-point name match the class's name"
        )
    try:
        built: AnyDetector = cls(**args)
    except TypeError as exc:
        raise ConfigError(f"detector {name!r}: bad arguments {args!r}: {exc}") from None
    return built


def ordered_names() -> list[str]:
    """Every detector: built-ins in registration order, then plugins by name."""
    names = detectors.names()
    return [n for n in _order if n in names] + [n for n in names if n not in _order]


def result_detector_names() -> list[str]:
    """Detectors that score one result at a time (`Detector`s)."""
    return [n for n in detectors.names() if not issubclass(detectors.get(n), GroupDetector)]


def group_detector_names() -> list[str]:
    """Detectors that score groups of repeats (`GroupDetector`s)."""
    return [n for n in detectors.names() if issubclass(detectors.get(n), GroupDetector)]


def declared_metrics() -> dict[str, Metric]:
    """Every metric the registered detectors declare, by name, in `ordered_names` order.

    Two detectors declaring one metric name is a `ConfigError` naming both: their scores would
    be mixed in one test.
    """
    out: dict[str, Metric] = {}
    owner: dict[str, str] = {}
    for name in ordered_names():
        for metric in getattr(detectors.get(name), "metrics", ()):
            if metric.name in out:
                raise ConfigError(
                    f"metric {metric.name!r} is declared by detectors {owner[metric.name]!r} and "
                    f"{name!r}; rename one of them"
                )
            out[metric.name] = metric
            owner[metric.name] = name
    return out


def declared_probe_kinds() -> tuple[str, ...]:
    """The probe kinds the registered detectors score, plus `BASE_PROBE_KINDS`."""
    kinds = dict.fromkeys(BASE_PROBE_KINDS)
    for name in ordered_names():
        cls = detectors.get(name)
        declared = (*getattr(cls, "kinds", ()), *getattr(cls, "probe_kinds", ()))
        kinds.update(dict.fromkeys(k for k in declared if k != "*"))
    return tuple(kinds)
