"""What a detector sees, what it returns, and the base class the built-ins share.

A detector is a frozen dataclass whose fields are its arguments: `args` is read from the fields,
so every score can be traced back to ``name``, ``version`` and the exact arguments that made it,
and a detector can be rebuilt from a stored spec with ``detectors.get(name)(**args)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from canary.probes.model import Probe
    from canary.records import ResultRecord, TokenLogprob

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

    @classmethod
    def from_record(cls, probe: Probe, record: ResultRecord) -> ScoringInput:
        """Build the input for a runner record of ``probe``."""
        return cls(
            probe=probe,
            output_text=record.output_text,
            error_kind=record.error_kind,
            tokens=record.tokens,
            finish_reason=record.finish_reason,
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def clip(text: str, limit: int = EVIDENCE_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
