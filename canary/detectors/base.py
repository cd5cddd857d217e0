"""What a detector sees, what it returns, and the base class the built-ins share.

A detector is a frozen dataclass whose fields are its arguments: `args` is read from the fields,
so every score can be traced back to ``name``, ``version`` and the exact arguments that made it,
and a detector can be rebuilt from a stored spec with ``detectors.get(name)(**args)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, runtime_checkable

from canary.detectors.metrics import Metric

if TYPE_CHECKING:
    from canary.probes.model import Probe
    from canary.records import ResultRecord, TokenLogprob, ToolCall

#: Evidence strings (spans, offending lines, outputs) are cut to this many characters.
EVIDENCE_TEXT_LIMIT = 200


@dataclass(frozen=True, slots=True)
class ScoringInput:
    """One probe result as detectors see it: the probe, and what the endpoint returned."""

    probe: Probe
    output_text: str | None
    error_kind: str | None = None
    tokens: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    """``stop``, ``length``, … when the endpoint said; lets code checks tell cut from broken."""
    tool_calls: tuple[ToolCall, ...] | None = None
    """The reply's tool calls when tools were offered (empty: none came); None otherwise."""

    @classmethod
    def from_record(cls, probe: Probe, record: ResultRecord) -> ScoringInput:
        """Build the input for a runner record of ``probe``."""
        return cls(
            probe=probe,
            output_text=record.output_text,
            error_kind=record.error_kind,
            tokens=record.tokens,
            finish_reason=record.finish_reason,
            tool_calls=record.tool_calls,
        )


@dataclass(frozen=True, slots=True)
class Score:
    """One metric of one result. Becomes one `ScoreRow`.

    ``value`` is what statistics compare across cohorts; ``flagged`` marks an absolute failure
    that needs no baseline (a Thai word in an English answer, code that does not parse);
    ``evidence`` is what on-call needs to see without opening the raw output.
    """

    metric: str
    value: float | None
    flagged: bool = False
    evidence: dict[str, Any] | None = None


class DetectorSpec(NamedTuple):
    """What made a score: detector name, version and arguments."""

    name: str
    version: str
    args: Mapping[str, Any]

    @property
    def fingerprint(self) -> str:
        """``version`` plus 8 hex digits of the canonical arguments, e.g. ``2+1a2b3c4d``.

        Scores with different fingerprints are not comparable; store it where a single
        version string is expected.
        """
        canonical = json.dumps(dict(self.args), sort_keys=True, separators=(",", ":"), default=str)
        return f"{self.version}+{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"


@runtime_checkable
class DetectorLike(Protocol):
    """What `score_all` needs from a detector; `Detector` is the convenient way to get it."""

    name: ClassVar[str]
    version: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    metrics: ClassVar[tuple[Metric, ...]]

    @property
    def args(self) -> dict[str, Any]: ...

    @property
    def spec(self) -> DetectorSpec: ...

    def applies_to(self, probe: Probe) -> bool: ...

    def score(self, inp: ScoringInput) -> list[Score]: ...


@dataclass(frozen=True)
class Detector:
    """Base for detectors: subclass as a frozen dataclass, set the class variables, write `measure`.

    `score` skips failed requests when `content` is true (the default): a timeout has no text
    to judge, and counting it here would double-count what the runner already records.
    """

    name: ClassVar[str]
    """Registry name, stored with every score."""
    version: ClassVar[str]
    """Bump whenever the same output could score differently."""
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    """Probe kinds this detector scores; ``"*"`` scores every kind."""
    content: ClassVar[bool] = True
    """Whether the detector judges the output text (and so skips failed requests)."""
    probe_kinds: ClassVar[frozenset[str]] = frozenset()
    """Probe kinds it introduces beyond ``kinds`` (a detector of every kind may name its own)."""
    metrics: ClassVar[tuple[Metric, ...]] = ()
    """The metrics it stores that compare, alerts and reports test: kind, policy, bins and how
    to explain their evidence. A stored metric not declared here is kept but never tested."""

    @property
    def args(self) -> dict[str, Any]:
        """The detector's arguments: its dataclass fields, JSON-ready."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def spec(self) -> DetectorSpec:
        return DetectorSpec(self.name, self.version, self.args)

    def applies_to(self, probe: Probe) -> bool:
        """Whether this detector scores probes of ``probe.kind``."""
        return "*" in self.kinds or probe.kind in self.kinds

    def score(self, inp: ScoringInput) -> list[Score]:
        """Score one result; ``[]`` when there is nothing to judge (e.g. a failed request)."""
        if self.content and inp.error_kind is not None:
            return []
        return self.measure(inp)

    def measure(self, inp: ScoringInput) -> list[Score]:
        """Score a result that `score` decided to judge. Subclasses implement this."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One result of a group (the repeats of one probe to one endpoint in one run)."""

    result_id: int
    output_text: str | None
    error_kind: str | None = None
    tokens: list[TokenLogprob] | None = None


@dataclass(frozen=True)
class GroupDetector:
    """Base for detectors that judge the repeats of one probe together (determinism, sampling).

    `canary.scoring.groups` hands `score_group` every complete group of a probe kind in
    ``kinds``; each result still gets its own scores, so rates, cohorts and evidence work like
    any other metric. With ``reference``, the group is judged against the reference model by
    `canary.scoring.reference` instead, and the class only declares what it stores.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    kinds: ClassVar[frozenset[str]] = frozenset()
    """Probe kinds whose groups it scores (none: it only declares metrics)."""
    metrics: ClassVar[tuple[Metric, ...]] = ()
    reference: ClassVar[bool] = False
    """Scored by the reference scorer, not through `score_group`."""
    group_by: ClassVar[str] = "run,endpoint,probe"

    @property
    def args(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def spec(self) -> DetectorSpec:
        return DetectorSpec(self.name, self.version, {"group": self.group_by, **self.args})

    @property
    def fingerprint(self) -> str:
        """``version+group``: what the group's scores are stored with."""
        return f"{self.version}+group"

    def applies_to(self, probe: Probe) -> bool:
        """Never one result at a time: groups are scored by `score_group`."""
        return False

    def score(self, inp: ScoringInput) -> list[Score]:
        return []

    def score_group(self, probe: Probe, members: Sequence[GroupMember]) -> list[tuple[int, Score]]:
        """(result id, score) pairs for one complete group of ``probe``'s repeats."""
        raise NotImplementedError


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def clip(text: str, limit: int = EVIDENCE_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
