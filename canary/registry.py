"""One small registry type, instantiated once per plugin kind.

Plugins register with a decorator in the module that defines them; third parties add their own
through the entry-point group named by the registry (e.g. ``canary.detectors``) without forking.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from canary.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → plugin map with collision errors and "did you mean" lookups.

    Entry points are loaded once, under a lock, on the first lookup: a daemon's slot threads
    never see a half-loaded registry, and an entry point that fails to import or that reuses a
    built-in's name is a `ConfigError` naming the distribution to fix, never silently dropped.
    With `base`, every plugin must be a subclass of it (or an instance, for non-class plugins).
    """

    def __init__(
        self, kind: str, entry_point_group: str | None = None, *, base: type[Any] | None = None
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.base = base
        self._items: dict[str, T] = {}
        self._entry_points_loaded = False
        self._lock = threading.RLock()

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name``; a second registration is an error."""

        def decorator(obj: T) -> T:
            self._check_base(name, obj)
            with self._lock:
                if name in self._items and self._items[name] is not obj:
                    raise ValueError(f"{self.kind} {name!r} is already registered")
                self._items[name] = obj
            return obj

        return decorator

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a plugin unloaded, or one a test registered); unknown names are
        ignored."""
        with self._lock:
            self._items.pop(name, None)

    def get(self, name: str) -> T:
        """Return the plugin called ``name`` or raise a `ConfigError` suggesting close names."""
        self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self._items)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}{hint} (known: {known})") from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _check_base(self, name: str, obj: object) -> None:
        if self.base is None:
            return
        ok = issubclass(obj, self.base) if isinstance(obj, type) else isinstance(obj, self.base)
        if not ok:
            raise ConfigError(
                f"{self.kind} {name!r} is {obj!r}, not a {self.base.__name__}; "
                f"subclass {self.base.__module__}.{self.base.__qualname__}"
            )

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or self.entry_point_group is None:
            return
        with self._lock:
            if self._entry_points_loaded:  # another thread loaded them while we waited
                return
            for ep in entry_points(group=self.entry_point_group):
                source = f"entry point {ep.name!r} = {ep.value!r} of group {ep.group!r}"
                try:
                    obj = ep.load()
                except Exception as exc:
                    raise ConfigError(
                        f"{self.kind} {source} failed to load ({type(exc).__name__}: {exc}); "
                        "fix or uninstall the package that provides it"
                    ) from exc
                existing = self._items.get(ep.name)
                if existing is not None and existing is not obj:
                    raise ConfigError(
                        f"{self.kind} {source} would shadow the built-in {ep.name!r}; "
                        "rename it in the plugin's entry points"
                    )
                self._check_base(ep.name, obj)
                self._items[ep.name] = obj
            # Set only after every entry point is in: a reader never sees a partial registry.
            self._entry_points_loaded = True
