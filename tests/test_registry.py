"""The plugin registry: entry points loaded once, whole, and never silently shadowing."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from canary.errors import ConfigError
from canary.registry import Registry


class Base:
    pass


class BuiltIn(Base):
    pass


def install_plugin(tmp_path: Path, group: str, entries: dict[str, str], module: str) -> None:
    """A real installed distribution: a dist-info folder on sys.path, found by importlib."""
    dist = tmp_path / "canary_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: canary-test-plugin\nVersion: 1.0\n"
    )
    lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
    (dist / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")
    (tmp_path / "canary_test_plugin.py").write_text(module)


@pytest.fixture
def plugin_path(tmp_path: Path):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("canary_test_plugin", None)


MODULE = """
from tests.test_registry import Base

class Plugin(Base):
    pass

class NotAPlugin:
    pass

raise_me = None
"""


def test_entry_point_plugin_is_found(plugin_path: Path) -> None:
    install_plugin(plugin_path, "canary.test_ok", {"mine": "canary_test_plugin:Plugin"}, MODULE)
    registry: Registry[type[Base]] = Registry("widget", "canary.test_ok", base=Base)
    registry.register("builtin")(BuiltIn)
    assert registry.names() == ["builtin", "mine"]
    assert registry.get("mine").__name__ == "Plugin"


def test_shadowing_a_built_in_is_refused(plugin_path: Path) -> None:
    install_plugin(
        plugin_path, "canary.test_shadow", {"builtin": "canary_test_plugin:Plugin"}, MODULE
    )
    registry: Registry[type[Base]] = Registry("widget", "canary.test_shadow")
    registry.register("builtin")(BuiltIn)
    with pytest.raises(ConfigError, match="would shadow the built-in 'builtin'"):
        registry.get("builtin")


def test_broken_and_wrongly_typed_plugins_name_themselves(plugin_path: Path) -> None:
    install_plugin(
        plugin_path,
        "canary.test_bad",
        {"gone": "canary_test_plugin:Missing", "odd": "canary_test_plugin:NotAPlugin"},
        MODULE,
    )
    registry: Registry[type[Base]] = Registry("widget", "canary.test_bad", base=Base)
    with pytest.raises(ConfigError, match=r"entry point 'gone'.*failed to load"):
        registry.names()
    with pytest.raises(ConfigError, match="not a Base"):
        registry.register("direct")(object)  # type: ignore[arg-type]


def test_an_entry_point_of_the_wrong_type_is_refused(plugin_path: Path) -> None:
    install_plugin(plugin_path, "canary.test_odd", {"odd": "canary_test_plugin:NotAPlugin"}, MODULE)
    registry: Registry[type[Base]] = Registry("widget", "canary.test_odd", base=Base)
    with pytest.raises(ConfigError, match=r"'odd' is .*NotAPlugin.*not a Base"):
        registry.get("odd")


def test_threads_never_see_a_partial_registry(plugin_path: Path) -> None:
    entries = {f"p{i}": "canary_test_plugin:Plugin" for i in range(50)}
    install_plugin(plugin_path, "canary.test_threads", entries, MODULE)
    registry: Registry[type[Base]] = Registry("widget", "canary.test_threads")
    seen: list[int] = []
    barrier = threading.Barrier(8)

    def look() -> None:
        barrier.wait()
        seen.append(len(registry.names()))

    threads = [threading.Thread(target=look) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [50] * 8
