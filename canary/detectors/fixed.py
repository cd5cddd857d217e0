"""Questions with one right answer, checked by the probe's ``expect``.

A healthy model answers these the same way every time at temperature 0, so a wrong answer is an
absolute signal (the routing incident made short-context requests land on servers that answered
worse). Checks, all optional and all required to pass when several are given:

- ``exact``: the stripped output equals this string (or one of these strings);
- ``contains``: the output contains this string / every string of this list;
- ``not_contains``: the output contains none of these strings;
- ``regex``: this pattern is found in the output (``regex`` module; use ``(?i)`` etc. inline);
- ``choice`` + ``answer``: of the options in ``choice``, the one that appears first in the
  output (as a whole word) is ``answer``.

``case_sensitive`` (default false) applies to every check except ``regex``. With single-letter
options ("A", "B"…) set it to true, or the article "a" counts as option A.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput, clip
from canary.detectors.metrics import Metric, rate
from canary.detectors.registry import register_detector
from canary.errors import ConfigError

CHECKS = ("exact", "contains", "not_contains", "regex", "choice")
_CLEAN = Score("fixed_fail", 0.0)  # frozen: one shared value serves every clean output


def check_answer(expect: dict[str, Any], output: str) -> list[dict[str, Any]]:
    """The checks of ``expect`` that ``output`` fails, each with what was expected and got."""
    case = bool(expect.get("case_sensitive", False))
    fold = (lambda s: s) if case else str.casefold
    got = fold(output)
    failures: list[dict[str, Any]] = []
    if "exact" in expect:
        accepted = _as_list(expect["exact"])
        if fold(output.strip()) not in {fold(a.strip()) for a in accepted}:
            failures.append({"check": "exact", "expected": accepted})
    if "contains" in expect:
        missing = [s for s in _as_list(expect["contains"]) if fold(s) not in got]
        if missing:
            failures.append({"check": "contains", "expected": missing})
    if "not_contains" in expect:
        present = [s for s in _as_list(expect["not_contains"]) if fold(s) in got]
        if present:
            failures.append({"check": "not_contains", "found": present})
    if "regex" in expect and _compiled(str(expect["regex"])).search(output) is None:
        failures.append({"check": "regex", "expected": expect["regex"]})
    if "choice" in expect:
        chosen = first_choice(_as_list(expect["choice"]), output, case)
        answer = expect.get("answer")
        if answer is None:
            raise ConfigError("expect.choice needs expect.answer (the right option)")
        if chosen is None or fold(chosen) != fold(str(answer)):
            failures.append({"check": "choice", "expected": answer, "chosen": chosen})
    return failures


def first_choice(options: list[str], output: str, case_sensitive: bool) -> str | None:
    """The option that appears first in ``output`` as a whole word, or `None`."""
    if not options:
        return None
    match = _choice_pattern(tuple(options), case_sensitive).search(output)
    if match is None:
        return None
    found = match.group()
    for option in options:
        if (option == found) if case_sensitive else (option.casefold() == found.casefold()):
            return option
    return found


@register_detector
@dataclass(frozen=True)
class FixedDetector(Detector):
    """Flags wrong answers to probes with a known answer."""

    name: ClassVar[str] = "fixed"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"fixed"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "fixed_fail",
            0.02,
            reason="known-answer probes miss a few answers on any healthy model; 2% more is a "
            "quality drop users notice",
        ),
    )

    got_limit: int = 200
    """Characters of the output kept in evidence."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        expect = inp.probe.expect
        if not any(check in expect for check in CHECKS):
            return []
        output = inp.output_text or ""
        failures = check_answer(expect, output)
        if not failures:
            return [_CLEAN]
        evidence = {"failed": failures, "got": clip(output, self.got_limit)}
        return [Score("fixed_fail", 1.0, flagged=True, evidence=evidence)]


def _as_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> regex.Pattern[str]:
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise ConfigError(f"expect.regex {pattern!r} is not a valid pattern: {exc}") from None


@functools.lru_cache(maxsize=1024)
def _choice_pattern(options: tuple[str, ...], case_sensitive: bool) -> regex.Pattern[str]:
    # Longest first, so "New York City" wins over "New York" at the same position.
    alternatives = "|".join(
        _bounded(option) for option in sorted(options, key=len, reverse=True) if option
    )
    return regex.compile(alternatives, 0 if case_sensitive else regex.IGNORECASE)


def _bounded(option: str) -> str:
    """``option`` as a pattern that does not match inside a longer word."""
    escaped = regex.escape(option)
    head = r"(?<!\w)" if option[0].isalnum() else ""
    tail = r"(?!\w)" if option[-1].isalnum() else ""
    return f"{head}{escaped}{tail}"
