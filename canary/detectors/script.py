"""Characters from Unicode scripts the probe does not expect, and mojibake.

The output-corruption incident showed up as "สวัสดี" or Han characters in the middle of English
answers. Scripts are matched with ``regex`` Unicode properties, never hand-written ranges: a
character is expected when its Script *or* one of its Script_Extensions is declared, so shared
punctuation, combining accents ("naïve") and emoji (Common) pass, while a Cyrillic "а" inside an
English word does not.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput, clip
from canary.detectors.metrics import EvidenceView, Explanation, Metric, Span, rate
from canary.detectors.registry import register_detector
from canary.errors import ConfigError

DEFAULT_SCRIPTS = ("Latin", "Common", "Inherited")

#: Scripts named in evidence. Names only; anything else is reported as its regex alias or "Other".
NAMED_SCRIPTS = (
    "Latin", "Greek", "Cyrillic", "Armenian", "Hebrew", "Arabic", "Syriac", "Thaana", "Nko",
    "Devanagari", "Bengali", "Gurmukhi", "Gujarati", "Oriya", "Tamil", "Telugu", "Kannada",
    "Malayalam", "Sinhala", "Thai", "Lao", "Tibetan", "Myanmar", "Georgian", "Hangul", "Ethiopic",
    "Cherokee", "Canadian_Aboriginal", "Ogham", "Runic", "Khmer", "Mongolian", "Hiragana",
    "Katakana", "Bopomofo", "Han", "Yi", "Tagalog", "Javanese", "Balinese", "Braille", "Tifinagh",
    "Vai", "Coptic", "Common", "Inherited", "Unknown",
)  # fmt: skip

_SPLIT_BY_SCRIPT = regex.compile(
    "|".join(f"(?P<{name}>\\p{{Script={name}}}+)" for name in NAMED_SCRIPTS) + "|(?P<Other>.)",
    regex.DOTALL,
)
# Spans of one script separated only by this (spaces, punctuation) are shown as one span.
_JOINABLE_GAP = regex.compile(r"[^\p{L}\p{N}]{0,3}")
# Plain code-point ranges: the standard `re` finds them faster and exactly as `regex` does.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Frozen: one shared value serves every clean output.
_CLEAN = Score("unexpected_script", 0.0)
_NO_FRACTION = Score("unexpected_char_fraction", None)
_ZERO_FRACTION = Score("unexpected_char_fraction", 0.0)
_NO_MOJIBAKE = Score("mojibake", 0.0)


@functools.lru_cache(maxsize=256)
def unexpected_pattern(scripts: frozenset[str]) -> regex.Pattern[str]:
    """Compiled pattern matching runs of characters outside ``scripts``."""
    validate_scripts(scripts)
    allowed = "".join(
        f"\\p{{Script={name}}}\\p{{Script_Extensions={name}}}" for name in sorted(scripts)
    )
    return regex.compile(f"[^{allowed}]+")


@functools.lru_cache(maxsize=256)
def _ascii_expected(unexpected: regex.Pattern[str]) -> bool:
    """Whether ``unexpected`` matches no ASCII character: then ASCII text needs no scan."""
    return unexpected.search("".join(map(chr, range(128)))) is None


@functools.lru_cache(maxsize=16)
def _script_class(scripts: tuple[str, ...]) -> regex.Pattern[str] | None:
    if not scripts:
        return None
    validate_scripts(scripts)
    return regex.compile("[" + "".join(f"\\p{{Script={name}}}" for name in scripts) + "]")


def _letter(text: str, at: int) -> bool:
    return 0 <= at < len(text) and text[at].isalpha()


def validate_scripts(names: Iterable[str]) -> None:
    """Raise `ConfigError` for a name that is not a Unicode script, suggesting a close one."""
    for name in names:
        try:
            regex.compile(f"\\p{{Script={name}}}")
        except regex.error:
            close = difflib.get_close_matches(name, NAMED_SCRIPTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown Unicode script {name!r} in expect.scripts{hint} "
                "(use Unicode script names such as Latin, Han, Cyrillic, Common)"
            ) from None


#: Scripts every text uses whatever its language (spaces, digits, punctuation, accents): a probe
#: that declares ``scripts: [Latin]`` means Latin text, not Latin letters with no spaces.
IMPLIED_SCRIPTS = frozenset({"Common", "Inherited"})


def expected_scripts(expect: dict[str, Any], default: Iterable[str]) -> frozenset[str]:
    """The probe's declared scripts (``expect.scripts``, a name or a list) plus
    `IMPLIED_SCRIPTS`, else ``default``."""
    declared = expect.get("scripts")
    if declared is None:
        return frozenset(default)
    if isinstance(declared, str):
        return frozenset({declared}) | IMPLIED_SCRIPTS
    return frozenset(declared) | IMPLIED_SCRIPTS


@register_detector
@dataclass(frozen=True)
class ScriptDetector(Detector):
    """Flags characters of undeclared Unicode scripts, and text damaged by bad decoding."""

    name: ClassVar[str] = "script"
    version: ClassVar[str] = "2"  # 2: Common/Inherited implied; a length-cut U+FFFD passes
    kinds: ClassVar[frozenset[str]] = frozenset({"*"})
    probe_kinds: ClassVar[frozenset[str]] = frozenset({"script"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "unexpected_script",
            0.004,
            critical=True,
            reason="healthy answers carry a stray script about 1 in 2,000 times (names, quotes); "
            "a rise of 0.4% is a decoding fault users see, and about the smallest rise 4,000 "
            "probes rule out against that noise with an anytime-valid test at α = 0.05",
            explain=Explanation(
                spans=lambda v: script_spans(v.text, v.located),
                detail=lambda v: _facts(v, ("scripts", "unexpected_chars", "expected")),
                lines=lambda d: [
                    f"{d.get('unexpected_chars')} character(s) of "
                    f"{', '.join(str(s) for s in d.get('scripts') or []) or '?'}"
                ],
                severity=lambda ev: float(ev.get("unexpected_chars") or 0),
            ),
        ),
        rate(
            "mojibake",
            0.002,
            reason="bad decoding shows as mojibake in 1 in 500 answers before users report it",
            explain=Explanation(
                spans=lambda v: mojibake_spans(v.text, v.located),
                severity=lambda ev: float(len(ev.get("reasons") or [])),
            ),
        ),
    )

    default_scripts: tuple[str, ...] = DEFAULT_SCRIPTS
    """Scripts expected when a probe declares none."""
    context: int = 20
    """Characters of context kept on each side of an offending span."""
    max_spans: int = 10
    """Most spans kept in evidence; counts cover all of them."""
    lone_letters_ok: tuple[str, ...] = ("Greek",)
    """Scripts whose single letters standing apart are fine ("π ≈ 3.14", "α-helix", "Δt");
    inside a word they are still flagged, as homoglyphs."""
    check_mojibake: bool = True
    """Also score `mojibake` (ftfy's detector, U+FFFD and control characters)."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        text = inp.output_text or ""
        scripts = expected_scripts(inp.probe.expect, self.default_scripts)
        scores = [*self._script_scores(text, scripts)]
        if self.check_mojibake:
            scores.append(self._mojibake_score(text, cut=inp.finish_reason == "length"))
        return scores

    def _script_scores(self, text: str, scripts: frozenset[str]) -> list[Score]:
        pattern = unexpected_pattern(scripts)
        clean = [_CLEAN, _NO_FRACTION if not text else _ZERO_FRACTION]
        if not text or (text.isascii() and _ascii_expected(pattern)):
            return clean
        if pattern.search(text) is None:
            return clean
        lone_ok = _script_class(self.lone_letters_ok)
        runs = [
            (m.start(), m.end())
            for m in pattern.finditer(text)
            if not (
                m.end() - m.start() == 1
                and lone_ok is not None
                and lone_ok.match(text, m.start()) is not None
                and not _letter(text, m.start() - 1)
                and not _letter(text, m.end())
            )
        ]
        if not runs:
            return clean
        count = sum(end - start for start, end in runs)
        spans = self._spans(text, runs, pattern)
        evidence = {
            "expected": sorted(scripts),
            "unexpected_chars": count,
            "scripts": sorted({span["script"] for span in spans}),
            "spans": spans[: self.max_spans],
            "spans_total": len(spans),
        }
        return [
            Score("unexpected_script", 1.0, flagged=True, evidence=evidence),
            Score("unexpected_char_fraction", count / len(text)),
        ]

    def _spans(
        self, text: str, runs: list[tuple[int, int]], unexpected: regex.Pattern[str]
    ) -> list[dict[str, Any]]:
        """Split runs by script, join same-script pieces across short gaps, add context."""
        pieces: list[list[Any]] = []
        for start, end in runs:
            for m in _SPLIT_BY_SCRIPT.finditer(text, start, end):
                script = m.lastgroup or "Other"
                if script == "Other":
                    script = _script_name(m.group())
                last = pieces[-1] if pieces else None
                if (
                    last is not None
                    and last[2] == script
                    and _JOINABLE_GAP.fullmatch(text, last[1], m.start()) is not None
                ):
                    last[1] = m.end()
                else:
                    pieces.append([m.start(), m.end(), script])
            if len(pieces) > self.max_spans:
                break
        c = self.context
        return [
            {
                "start": start,
                "end": end,
                "text": clip(text[start:end], 80),
                "script": script,
                "context": text[max(0, start - c) : end + c],
                "in_word": _expected_letter(text, start - 1, unexpected)
                or _expected_letter(text, end, unexpected),
            }
            for start, end, script in pieces
        ]

    def _mojibake_score(self, text: str, *, cut: bool = False) -> Score:
        """``cut``: the output stopped at ``max_tokens``, so the replacement characters that
        end it are the first bytes of a character the limit split, not corruption."""
        reasons: list[dict[str, Any]] = []
        judged = _without_cut_character(text) if cut else text
        if "\ufffd" in judged:
            reasons.append(self._located("replacement_char", text, judged.index("\ufffd")))
        if (control := _CONTROL.search(text)) is not None:
            reasons.append(self._located("control_char", text, control.start()))
        if not judged.isascii():  # mojibake needs non-ASCII: skip ftfy's scan (and import)
            reasons += self._mojibake(text, judged)
        if not reasons:
            return _NO_MOJIBAKE
        return Score("mojibake", 1.0, flagged=True, evidence={"reasons": reasons})

    def _mojibake(self, text: str, judged: str) -> list[dict[str, Any]]:
        from ftfy import fix_text
        from ftfy.badness import BADNESS_RE, is_bad

        if not is_bad(judged):
            return []
        bad = BADNESS_RE.search(judged)
        at = bad.start() if bad is not None else 0
        reason = self._located("mojibake", text, at)
        reason["fixed"] = clip(fix_text(reason["context"]))
        return [reason]

    def _located(self, reason: str, text: str, at: int) -> dict[str, Any]:
        c = self.context
        return {"reason": reason, "offset": at, "context": text[max(0, at - c) : at + c + 1]}


def _without_cut_character(text: str) -> str:
    """``text`` less the 1–3 replacement characters a cut multi-byte character decodes to."""
    kept = text.rstrip("\ufffd")
    return kept if len(text) - len(kept) <= 3 else text


def _expected_letter(text: str, at: int, unexpected: regex.Pattern[str]) -> bool:
    """Whether ``text[at]`` is a letter of an expected script (a homoglyph's neighbour)."""
    return 0 <= at < len(text) and text[at].isalpha() and unexpected.match(text, at) is None


def _script_name(char: str) -> str:
    """The Script of ``char`` when it is not one of `NAMED_SCRIPTS` (rare: evidence only)."""
    for name in _all_script_names():
        if regex.match(f"\\p{{Script={name}}}", char):
            return name.title()
    return "Other"


@functools.cache
def _all_script_names() -> tuple[str, ...]:
    try:  # regex keeps its Unicode property tables in a private module; names only, if present
        from regex import _regex

        _, values = _regex.get_properties()["SCRIPT"]
    except Exception:
        return ()
    longest: dict[int, str] = {}
    for alias, ident in values.items():
        if len(alias) > len(longest.get(ident, "")):
            longest[ident] = alias
    return tuple(longest.values())


def script_spans(text: str, evidence: Mapping[str, Any] | None) -> list[Span]:
    """Characters of unexpected scripts: the stored spans, else a fresh scan of ``text``."""
    spans = []
    for s in (evidence or {}).get("spans", []):
        start, end = int(s.get("start", -1)), int(s.get("end", -1))
        if 0 <= start < end <= len(text):
            spans.append(Span(start, end, "unexpected_script", f"{s.get('script', '?')} script"))
    if spans or not text:
        return spans
    pattern = unexpected_pattern(frozenset(DEFAULT_SCRIPTS))
    return [
        Span(m.start(), m.end(), "unexpected_script", "outside Latin/Common")
        for m in pattern.finditer(text)
    ][:10]


def mojibake_spans(text: str, evidence: Mapping[str, Any] | None) -> list[Span]:
    """The first replacement, control or mis-decoded character the detector reported."""
    spans = []
    for reason in (evidence or {}).get("reasons", []):
        at = reason.get("offset")
        if isinstance(at, int) and 0 <= at < len(text):
            spans.append(Span(at, at + 1, "mojibake", str(reason.get("reason", "mojibake"))))
    return spans


def _facts(view: EvidenceView, keys: tuple[str, ...]) -> dict[str, Any]:
    """The named evidence fields, when there is evidence."""
    ev = view.evidence
    return {k: ev.get(k) for k in keys} if ev else {}
