"""Adding optional probe fields (`tools`, `tool_choice`) must not change any suite's version:
stored results and baselines are keyed by it."""

from __future__ import annotations

from canary.probes import load_suite
from canary.probes.model import Suite

#: Versions of the shipped suites as computed before `tools`/`tool_choice` existed (by the
#: previous `Suite.version` over the same files).
BEFORE_TOOLS = {
    "code": "24c637d8a707",
    "determinism": "e25d721e0375",
    "entropy": "73cfaf9d36ec",
    "fixed": "d50c6dd4c17c",
    "routing": "7fbea9dc8415",
    "sampling": "8c99da3db46b",
    "script": "4c7bbbef2a56",
    "smoke": "8d1beab262f3",
    "topk": "f3154c8239df",
    "utf8": "e78758c18762",
}


def test_suites_without_tools_keep_their_versions() -> None:
    for name, version in BEFORE_TOOLS.items():
        suite = load_suite(name)
        assert all(p.tools is None and p.tool_choice is None for p in suite.probes)
        assert suite.version == version, name


def test_tools_are_part_of_the_version() -> None:
    suite = load_suite("tool_calls")
    probes = list(suite.probes)
    first = probes[0]
    assert first.tools is not None
    renamed = first.tools[0].model_copy(update={"description": "changed"})
    changed = first.model_copy(update={"tools": [renamed, *first.tools[1:]]})
    other = Suite(name=suite.name, probes=[changed, *probes[1:]])
    assert other.version != suite.version
    choice = first.model_copy(update={"tool_choice": first.tools[0].name})
    assert Suite(name=suite.name, probes=[choice, *probes[1:]]).version != suite.version
