"""Tool probes are strict like every probe: a bad tool or tool_choice fails loading, naming it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from canary.probes.model import Probe

TOOL = {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}


def make(**fields: Any) -> Probe:
    return Probe.model_validate({"id": "p", "kind": "tool_call", "prompt": "hi", **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tool_choice": "required"}, "'tool_choice' needs 'tools'"),
        ({"tools": [TOOL], "tool_choice": "g"}, "neither a mode"),
        ({"tools": [TOOL, TOOL]}, "tool names repeat"),
        ({"tools": [{**TOOL, "name": "auto"}]}, "is a tool_choice mode"),
        ({"tools": [{**TOOL, "name": "bad name"}]}, "should match pattern"),
        ({"tools": [{**TOOL, "parameters": {"type": "objekt"}}]}, "not a valid JSON Schema"),
        ({"tools": []}, "'tools' is empty"),
    ],
)
def test_bad_tools_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make(**fields)


def test_a_named_choice_and_the_modes_are_accepted() -> None:
    for choice in ("f", "auto", "required", "none", None):
        assert make(tools=[TOOL], tool_choice=choice).tool_choice == choice
