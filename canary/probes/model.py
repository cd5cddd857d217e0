"""Probe and suite models: what is sent, and what its checks need."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_PROBE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def probe_kinds() -> tuple[str, ...]:
    """The probe kinds the registered detectors score (``generic`` needs none): a plugin's
    detector adds its own.

    The detectors sit above this module, so they are found by name at first use, the way entry
    points are, and this module never imports them.
    """
    from importlib import import_module

    kinds: tuple[str, ...] = import_module("canary.detectors").declared_probe_kinds()
    return kinds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplingParams(_Strict):
    """Sampling parameters sent with a probe."""

    temperature: Annotated[float, Field(ge=0, le=5)] = 0.0
    """0 means greedy."""
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Nucleus threshold."""
    top_k: Annotated[int | None, Field(ge=1)] = None
    """Top-k filter; sent only when set (not every API accepts it)."""
    max_tokens: Annotated[int, Field(ge=1, le=32768)] = 64
    """Most tokens to generate."""
    seed: int | None = None
    """Sampling seed, for endpoints that honour one."""
    logprobs: bool = False
    """Ask for the chosen tokens' logprobs (dropped for endpoints without logprob support)."""
    top_logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    """Alternatives per position to return with `logprobs`."""
    stop: list[str] | None = None
    """Stop sequences."""

    @model_validator(mode="after")
    def _top_logprobs_need_logprobs(self) -> SamplingParams:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs 'logprobs: true'")
        return self


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


#: Values of `Probe.tool_choice` that are modes, not a function name.
TOOL_CHOICE_MODES = ("auto", "required", "none")
#: Probe fields added after suites were versioned: left out of `Suite.version` when unset, so
#: the versions of suites that do not use them stay what they were.
_OPTIONAL_FIELDS = ("tools", "tool_choice")


class Tool(_Strict):
    """A function offered to the model (sent as an OpenAI `tools` entry)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    """Function name; not `auto`, `required` or `none` (those are `tool_choice` modes)."""
    description: str = ""
    """What the function does, as the model is told."""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments; the `tool_calls` detector validates calls against it."""

    @field_validator("parameters")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class Probe(_Strict):
    """One fixed request and the data its checks need."""

    id: str
    """Unique within the suite; stable across versions so results line up."""
    kind: str = "generic"
    """What the probe tests: fixed, code, script, entropy, topk, determinism, sampling, routing,
    tool_call (a plugin detector may declare more)."""
    prompt: str | None = None
    """Prompt text for completion endpoints (chat endpoints get it as one user message)."""
    messages: list[Message] | None = None
    """Chat messages (completion endpoints get them joined as a transcript)."""
    params: SamplingParams = Field(default_factory=SamplingParams)
    """Sampling parameters."""
    repeat: Annotated[int, Field(ge=1, le=10000)] = 1
    """How many times to send the probe in one round (determinism, sampling)."""
    session: str | None = None
    """Probes sharing a session name are sent in order with one session id (sticky routing)."""
    expect: dict[str, Any] = Field(default_factory=dict)
    """What the checks need: answers, patterns, language, expected scripts…"""
    tags: list[str] = Field(default_factory=list)
    """Free-form tags for selection and reports."""
    tools: list[Tool] | None = None
    """Functions offered to the model (chat endpoints only; see the `tool_calls` detector)."""
    tool_choice: str | None = None
    """`auto`, `required`, `none`, or the name of the tool that must be called; with tools
    and none given, the endpoint's default (`auto`)."""

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not _PROBE_ID.match(value):
            raise ValueError("use letters, digits, '_', '.', ':' or '-' (at most 128)")
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        known = probe_kinds()
        if value not in known:
            raise ValueError(f"unknown kind {value!r}; use one of {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _one_input(self) -> Probe:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' is empty")
        return self

    @model_validator(mode="after")
    def _tools_consistent(self) -> Probe:
        names = [t.name for t in self.tools or []]
        if self.tools is not None and not names:
            raise ValueError("'tools' is empty; leave it out for a probe without tools")
        if len(set(names)) < len(names):
            raise ValueError("tool names repeat; each tool needs its own name")
        clash = sorted(set(names) & set(TOOL_CHOICE_MODES))
        if clash:
            raise ValueError(f"tool name {clash[0]!r} is a tool_choice mode; rename the tool")
        choice = self.tool_choice
        if choice is not None:
            if not names:
                raise ValueError("'tool_choice' needs 'tools'")
            if choice not in TOOL_CHOICE_MODES and choice not in names:
                raise ValueError(
                    f"tool_choice {choice!r} is neither a mode ({', '.join(TOOL_CHOICE_MODES)}) "
                    "nor the name of a tool"
                )
        return self

    def as_messages(self) -> list[Message]:
        if self.messages is not None:
            return list(self.messages)
        return [Message(role="user", content=self.prompt or "")]

    def as_prompt(self) -> str:
        """The text a completions endpoint is sent (messages joined as a transcript)."""
        if self.prompt is not None:
            return self.prompt
        return transcript(self.messages or [])


def transcript(messages: list[Message]) -> str:
    """Messages as `role: content` lines, then `assistant:` for the model to continue."""
    return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"


class Suite(_Strict):
    """A named, versioned list of probes. The version is a hash of the content."""

    name: str
    description: str = ""
    probes: list[Probe]

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        seen: set[str] = set()
        for probe in self.probes:
            if probe.id in seen:
                raise ValueError(f"probe id {probe.id!r} appears twice; ids are unique in a suite")
            seen.add(probe.id)
        if not self.probes:
            raise ValueError("the suite has no probes")
        return self

    @property
    def version(self) -> str:
        """12 hex digits of SHA-256 over the canonical probe content (not the description)."""
        canonical = json.dumps(
            [_canonical(p) for p in self.probes], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(f"{self.name}\n{canonical}".encode()).hexdigest()[:12]

    def probe(self, probe_id: str) -> Probe:
        for probe in self.probes:
            if probe.id == probe_id:
                return probe
        raise KeyError(probe_id)


def _canonical(probe: Probe) -> dict[str, Any]:
    """The probe's content as versioned: later optional fields only where they are set."""
    dumped = probe.model_dump(mode="json")
    for name in _OPTIONAL_FIELDS:
        if dumped.get(name) is None:
            dumped.pop(name, None)
    return dumped
