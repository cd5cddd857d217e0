"""The `tool_calls` detector: each failure flagged on its own metric, healthy calls quiet."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canary.detectors import ScoringInput, declared_metrics, default_detector, score_all
from canary.errors import ConfigError
from canary.probes import load_suite
from canary.probes.model import Probe
from canary.records import ToolCall

WEATHER = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}


def probe(choice: str | None = "required", tools: Any = None, **expect: Any) -> Probe:
    return Probe.model_validate(
        {
            "id": "p",
            "kind": "tool_call",
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": tools or [WEATHER],
            "tool_choice": choice,
            "expect": expect,
        }
    )


def call(arguments: Any = None, name: str = "get_weather", id: str | None = "call_1") -> ToolCall:
    text = (
        arguments
        if isinstance(arguments, str)
        else json.dumps(
            arguments if arguments is not None else {"city": "Paris", "unit": "celsius"}
        )
    )
    return ToolCall(id, name, text)


def flags(
    p: Probe, calls: tuple[ToolCall, ...] | None, finish: str = "tool_calls"
) -> dict[str, bool]:
    inp = ScoringInput(p, "", finish_reason=finish, tool_calls=calls)
    return {s.metric: s.flagged for _, s in score_all(inp, ["tool_calls"])}


def flagged(p: Probe, calls: tuple[ToolCall, ...] | None, finish: str = "tool_calls") -> set[str]:
    return {m for m, f in flags(p, calls, finish).items() if f}


def test_a_healthy_call_is_quiet_on_every_metric() -> None:
    scored = flags(probe(), (call(),))
    assert scored and not any(scored.values())
    assert set(scored) == {m.name for m in default_detector("tool_calls").metrics} - {
        "tool_call_arguments_mismatch"
    }


@pytest.mark.parametrize(
    ("calls", "finish", "metric"),
    [
        ((), "stop", "tool_call_missed"),
        ((), "tool_calls", "tool_call_finish_mismatch"),
        ((call(),), "stop", "tool_call_finish_mismatch"),
        ((call(name="get_time"),), "tool_calls", "tool_call_name_mismatch"),
        ((call(name="rm_rf"),), "tool_calls", "tool_call_name_mismatch"),
        ((call('{"city": "Paris", "unit": "celsius"'),), "tool_calls", "tool_call_schema_invalid"),
        ((call(json.dumps('{"city":"P","unit":"celsius"}')),), "tool_calls",
         "tool_call_schema_invalid"),
        ((call({"city": "Paris", "unit": "kelvin"}),), "tool_calls", "tool_call_schema_invalid"),
        ((call({"city": "Paris"}),), "tool_calls", "tool_call_schema_invalid"),
        ((call(id=None),), "tool_calls", "tool_call_id_invalid"),
        ((call(id="call 1\n"),), "tool_calls", "tool_call_id_invalid"),
        ((call(), call()), "tool_calls", "tool_call_id_invalid"),
        ((ToolCall(None, None, None, None, "tool_calls[0] is JSON number, not an object"),),
         "tool_calls", "tool_call_schema_invalid"),
    ],
)  # fmt: skip
def test_each_failure_is_flagged(calls: tuple[ToolCall, ...], finish: str, metric: str) -> None:
    tools = [WEATHER, TIME]
    assert metric in flagged(probe("get_weather", tools), calls, finish)


def test_none_and_auto_expectations() -> None:
    assert flagged(probe("none"), (), "stop") == set()
    assert "tool_call_unexpected" in flagged(probe("none"), (call(),))
    auto = flags(probe("auto"), (), "stop")
    assert "tool_call_missed" not in auto  # auto without expect.call: no trigger expectation
    assert "tool_call_unexpected" in flagged(probe("auto", call=False), (call(),))
    assert "tool_call_missed" in flagged(probe("auto", call=True), (), "stop")


def test_expected_arguments_must_match_exactly() -> None:
    p = probe(arguments={"unit": "celsius"})
    assert flagged(p, (call(),)) == set()
    wrong = flags(p, (call({"city": "Paris", "unit": "fahrenheit"}),))
    assert wrong["tool_call_arguments_mismatch"]
    number = probe(tools=[{"name": "f", "parameters": {"type": "object"}}], arguments={"n": 1})
    assert flagged(number, (call({"n": 1.0}, name="f"),)) == set()
    assert "tool_call_arguments_mismatch" in flagged(number, (call({"n": True}, name="f"),))


def test_not_applicable_without_offered_tools() -> None:
    assert flags(probe(), None, "stop") == {}  # the completions flavour could not offer them


def test_evidence_keeps_the_raw_arguments_clipped_and_clean() -> None:
    raw = '{"city": "\x1b[31m' + "x" * 500
    inp = ScoringInput(probe(), "", finish_reason="tool_calls", tool_calls=(call(raw),))
    (schema,) = [
        s for _, s in score_all(inp, ["tool_calls"]) if s.metric == "tool_call_schema_invalid"
    ]
    assert schema.flagged and schema.evidence is not None
    assert len(schema.evidence["arguments"]) <= 200 and "not valid JSON" in schema.evidence["error"]


def test_bad_expectations_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"expect\.tool"):
        flags(probe(tool="nope"), (call(),))
    with pytest.raises(ConfigError, match=r"expect\.call"):
        flags(probe(call="yes"), (call(),))


def test_metrics_are_declared_with_policies() -> None:
    declared = declared_metrics()
    schema = declared["tool_call_schema_invalid"]
    assert schema.kind == "rate" and schema.critical and schema.margin > 0 and schema.reason
    assert declared["tool_call_missed"].direction == "higher_is_worse"


def test_the_suite_loads_and_declares_its_expectations() -> None:
    suite = load_suite("tool_calls")
    assert len(suite.probes) >= 20 and {p.kind for p in suite.probes} == {"tool_call"}
    for p in suite.probes:
        from canary.detectors.tool_calls import expectation

        expectation(p)  # every probe's expect is usable
