"""Tool calls judged against the probe's tools, in the style of MoonshotAI's K2 Vendor Verifier.

K2VV sends the same tool requests to every provider of a model and compares two numbers: how
often a provider triggers a call where it should (finish reason ``tool_calls``, scored as F1
against the expected trigger) and what share of its calls have arguments that validate against
the tool's JSON Schema ("schema accuracy"). Serving bugs show up there first: a tool parser that
cuts the closing brace, encodes the arguments twice, or reuses call ids.

Per result this detector stores one rate per failure, so compare and alerts test each per cohort
and the K2VV figures follow from them: with E results expecting a call, recall is
``1 - tool_call_missed``; precision is ``TP / (TP + FP)`` from the missed and unexpected counts;
schema accuracy is ``1 - tool_call_schema_invalid`` (scored only on results with a call).

A result whose request could not offer tools (the completions and Anthropic flavours send a tool
probe as plain text; its `tool_calls` is None) is not applicable and gets no score.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput, clip
from canary.detectors.metrics import Explanation, Metric, rate
from canary.detectors.registry import register_detector
from canary.errors import ConfigError
from canary.probes.model import TOOL_CHOICE_MODES, Probe, Tool
from canary.records import ToolCall
from canary.sanitize import storable_text

#: What a well-formed call id looks like (OpenAI's ``call_…``, vLLM's and SGLang's variants).
CALL_ID = regex.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

_MISSED = "tool_call_missed"
_UNEXPECTED = "tool_call_unexpected"
_FINISH = "tool_call_finish_mismatch"
_NAME = "tool_call_name_mismatch"
_SCHEMA = "tool_call_schema_invalid"
_ID = "tool_call_id_invalid"
_ARGS = "tool_call_arguments_mismatch"


def _lines(evidence: Mapping[str, Any]) -> list[str]:
    shown = ("reason", "expected", "got", "error", "arguments", "finish_reason")
    return [f"{k}: {evidence[k]}" for k in shown if evidence.get(k) not in (None, "")]


_EXPLAIN = Explanation(lines=_lines)


@register_detector
@dataclass(frozen=True)
class ToolCallsDetector(Detector):
    """Flags tool calls that are missing, unasked for, misnamed, schema-invalid or badly formed.

    Expectations come from the probe: a call is expected with `tool_choice` `required` or a
    tool's name, none with `none`; `expect.call` (true/false) says it for `auto`. The expected
    function is `expect.tool`, else the named `tool_choice`, else the only tool; with
    `expect.arguments`, each listed argument must have exactly that value.
    """

    name: ClassVar[str] = "tool_calls"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"tool_call"})
    probe_kinds: ClassVar[frozenset[str]] = frozenset({"tool_call"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            _MISSED,
            0.02,
            critical=True,
            reason="a forced call that does not come breaks the agent that asked for it; 2% "
            "more misses is a serving regression, not model noise",
            explain=_EXPLAIN,
        ),
        rate(
            _UNEXPECTED,
            0.02,
            reason="a call where none was asked for runs a tool the user did not want",
            explain=_EXPLAIN,
        ),
        rate(
            _FINISH,
            0.01,
            reason="finish_reason disagreeing with the calls is a parser bug clients trip on",
            explain=_EXPLAIN,
        ),
        rate(
            _NAME,
            0.01,
            critical=True,
            reason="calling a function that was not offered (or not the one forced) fails the "
            "client's dispatch outright",
            explain=_EXPLAIN,
        ),
        rate(
            _SCHEMA,
            0.01,
            critical=True,
            reason="arguments that do not validate against the tool's schema are K2VV's schema "
            "accuracy; guided decoding makes 0 the healthy rate, so 1% is a parser fault",
            explain=_EXPLAIN,
        ),
        rate(
            _ID,
            0.01,
            reason="a missing, malformed or repeated call id mismatches the tool results a "
            "client sends back",
            explain=_EXPLAIN,
        ),
        rate(
            _ARGS,
            0.02,
            reason="arguments the schema fully determines must come out as determined",
            explain=_EXPLAIN,
        ),
    )

    arguments_limit: int = 200
    """Characters of a call's raw arguments kept in evidence."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        probe = inp.probe
        if inp.tool_calls is None or not probe.tools:
            return []  # tools could not be offered: not applicable
        expected_call, expected_name, expected_args = expectation(probe)
        calls = inp.tool_calls
        called = bool(calls)
        scores: list[Score] = []
        base = {"finish_reason": inp.finish_reason, "calls": len(calls)}
        if expected_call is not None:
            missed = expected_call and not called
            unexpected = not expected_call and called
            scores.append(_score(_MISSED, missed, {**base, "reason": "no tool call"}))
            scores.append(
                _score(
                    _UNEXPECTED,
                    unexpected,
                    {
                        **base,
                        "reason": "a call where none was expected",
                        "got": _called_names(calls),
                    },
                )
            )
        finish_says = inp.finish_reason == "tool_calls"
        scores.append(
            _score(
                _FINISH,
                finish_says != called,
                {**base, "reason": "finish_reason tool_calls without calls"}
                if finish_says
                else {**base, "reason": "calls without finish_reason tool_calls"},
            )
        )
        if not called:
            return scores
        tools = {t.name: t for t in probe.tools}
        scores.append(self._names(calls, tools, expected_name))
        scores.append(self._schema(calls, tools))
        scores.append(_ids(calls))
        if expected_args:
            scores.append(self._arguments(calls, expected_name, expected_args))
        return scores

    def _names(
        self, calls: tuple[ToolCall, ...], tools: dict[str, Tool], want: str | None
    ) -> Score:
        for call in calls:
            if call.name not in tools:
                return _score(_NAME, True, {"reason": "not an offered tool", "got": call.name})
            if want is not None and call.name != want:
                return _score(
                    _NAME, True, {"reason": "wrong tool", "expected": want, "got": call.name}
                )
        return _score(_NAME, False, None)

    def _schema(self, calls: tuple[ToolCall, ...], tools: dict[str, Tool]) -> Score:
        for index, call in enumerate(calls):
            tool = tools.get(call.name or "")
            error = argument_error(call, tool)
            if error is not None:
                return _score(
                    _SCHEMA,
                    True,
                    {
                        "reason": "invalid arguments",
                        "call": index,
                        "tool": call.name,
                        "error": clip(storable_text(error) or ""),
                        "arguments": clip(
                            storable_text(call.arguments or "") or "", self.arguments_limit
                        ),
                    },
                )
        return _score(_SCHEMA, False, None)

    def _arguments(
        self, calls: tuple[ToolCall, ...], want_name: str | None, want: Mapping[str, Any]
    ) -> Score:
        call = next((c for c in calls if want_name is None or c.name == want_name), calls[0])
        parsed = _loads(call.arguments)
        if not isinstance(parsed, dict):
            return _score(_ARGS, True, {"reason": "arguments are not a JSON object"})
        wrong = {k: v for k, v in want.items() if k not in parsed or not _same(parsed[k], v)}
        if not wrong:
            return _score(_ARGS, False, None)
        got = {k: parsed.get(k) for k in wrong}
        return _score(
            _ARGS,
            True,
            {
                "reason": "argument values differ",
                "expected": clip(json.dumps(wrong, sort_keys=True)),
                "got": clip(storable_text(json.dumps(got, sort_keys=True, default=str)) or ""),
            },
        )


def expectation(probe: Probe) -> tuple[bool | None, str | None, dict[str, Any]]:
    """(call expected?, expected function, expected argument values) of a tool probe; raises
    `ConfigError` for an `expect` the detector cannot use."""
    expect = probe.expect
    names = [t.name for t in probe.tools or []]
    choice = probe.tool_choice or "auto"
    call = expect.get("call")
    if call is not None and not isinstance(call, bool):
        raise ConfigError(f"probe {probe.id!r}: expect.call must be true or false")
    if call is None:
        call = {"required": True, "none": False}.get(choice, None if choice == "auto" else True)
    name = expect.get("tool")
    if name is not None and name not in names:
        raise ConfigError(f"probe {probe.id!r}: expect.tool {name!r} is not one of its tools")
    if name is None and choice not in TOOL_CHOICE_MODES:
        name = choice
    if name is None and len(names) == 1 and call:
        name = names[0]
    arguments = expect.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise ConfigError(f"probe {probe.id!r}: expect.arguments must be an object")
    return call, name, arguments


def argument_error(call: ToolCall, tool: Tool | None) -> str | None:
    """Why the call's arguments are not a valid instance of the tool's schema, or None."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    if call.arguments is None:
        return call.problem or "no arguments string"
    parsed = _loads(call.arguments)
    if parsed is _INVALID:
        return "arguments are not valid JSON"
    if not isinstance(parsed, dict):
        return f"arguments are JSON {type(parsed).__name__}, not an object"
    if tool is None:
        return None  # the name check flags it; there is no schema to hold it to
    error = best_match(Draft202012Validator(tool.parameters).iter_errors(parsed))
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path)
    return f"{path}: {error.message}" if path else error.message


def _ids(calls: tuple[ToolCall, ...]) -> Score:
    seen: set[str] = set()
    for index, call in enumerate(calls):
        reason = None
        if call.problem is not None:
            reason = call.problem
        elif call.id is None:
            reason = "no id"
        elif not CALL_ID.match(call.id):
            reason = "malformed id"
        elif call.id in seen:
            reason = "id repeated within the reply"
        elif call.type != "function":
            reason = "type is not 'function'"
        if reason is not None:
            got = clip(storable_text(call.id or "") or "")
            return _score(_ID, True, {"reason": clip(reason), "call": index, "got": got})
        seen.add(call.id or "")
    return _score(_ID, False, None)


_INVALID = object()


def _loads(text: str | None) -> Any:
    if text is None:
        return _INVALID
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _INVALID


def _same(got: Any, want: Any) -> bool:
    """JSON equality where 1 and 1.0 agree but true and 1 do not."""
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    return bool(got == want)


def _called_names(calls: tuple[ToolCall, ...]) -> str:
    return clip(", ".join(storable_text(c.name or "?") or "?" for c in calls))


def _score(metric: str, flagged: bool, evidence: dict[str, Any] | None) -> Score:
    return Score(
        metric, 1.0 if flagged else 0.0, flagged=flagged, evidence=evidence if flagged else None
    )
