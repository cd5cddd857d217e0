"""Code in the output that does not parse (Python, JSON, SQL).

The output-corruption incident produced "obvious syntax errors in code": one wrong token in an
otherwise fine answer. Parsing is cheap and has no false positives on valid code, so a parse
error is flagged outright. Care goes into not blaming the model for what is not code (chatter
around a fence, prose after a completion) or for code cut off by ``max_tokens``.
"""

from __future__ import annotations

import ast
import codeop
import functools
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import regex

from canary.detectors.base import Detector, Score, ScoringInput, clip
from canary.detectors.metrics import Explanation, Metric, Span, rate
from canary.detectors.registry import register_detector
from canary.errors import ConfigError
from canary.probes.model import Probe

#: Fence tags accepted for each language; untagged fences are read as the probe's language.
LANGUAGE_TAGS = {
    "python": frozenset({"python", "py", "python3", "py3", "ipython"}),
    "json": frozenset({"json"}),
    "sql": frozenset(
        {"sql", "postgresql", "postgres", "psql", "mysql", "sqlite", "tsql", "plsql", "duckdb"}
    ),
}

_FENCE = regex.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<tag>[\w+#.-]*)[^\n]*\n"
    r"(?P<body>.*?)(?:(?P<close>^[ \t]*(?P=fence)[ \t]*$)|\Z)",
    regex.MULTILINE | regex.DOTALL,
)
# A sentence, not code: a capitalised word, a lowercase word, a third word ("This function
# returns…", "Here is how…"), or a usual heading ("Example:", "Output"). Only ever used to cut
# text that fails to parse *with* the line and parses without it.
_PROSE = regex.compile(
    r"^(?:\p{Lu}\p{Ll}+['’]?\p{Ll}*,? \p{Ll}+\S* \S|"
    r"(?:Note|Example|Output|Explanation|Usage|Result)s?\b)"
)
_SQL_START = regex.compile(
    r"^\s*(?i:select|with|insert|update|delete|create|drop|alter|merge|from|where|values)\b"
)
_SQLGLOT_TOKEN = regex.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: [^>]*>")
_CLEAN = Score("code_parse_error", 0.0)  # frozen: one shared value serves every clean output
# Not in typeshed: codeop's flags that make "needs more input" a distinct SyntaxError.
_PY_FLAGS: int = (
    ast.PyCF_ONLY_AST
    | codeop.PyCF_ALLOW_INCOMPLETE_INPUT  # type: ignore[attr-defined]
    | codeop.PyCF_DONT_IMPLY_DEDENT  # type: ignore[attr-defined]
)


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """Code taken from an output, and where it came from."""

    code: str
    source: str
    """``fence`` (a fenced block), ``completion`` (prompt + output) or ``output`` (bare)."""
    offset: int = 0
    """Where the block starts in the output (fences)."""
    closed: bool = True
    """False when the output ended before the closing fence."""
    prompt_lines: int = 0
    """Lines of the code that came from the prompt (completions)."""


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """Why code failed to parse, located as the parser reports it (1-based)."""

    message: str
    line: int | None
    column: int | None
    incomplete: bool = False
    """The parser wanted more input: the code may just be cut off."""


def extract_code(probe: Probe, output: str, language: str) -> list[CodeBlock]:
    """The code blocks to check in ``output``.

    Fenced blocks tagged with ``language`` win; untagged fences are used when there are none;
    without fences, a completion of a code prompt is prompt + output, anything else the bare
    output. Returns ``[]`` when the only fences are in other languages.
    """
    # Every fence opens with ``` or ~~~: without one, _FENCE's scan would find nothing.
    fences = list(_FENCE.finditer(output)) if "```" in output or "~~~" in output else []
    if fences:
        tagged, untagged = [], []
        for m in fences:
            tag = m.group("tag").lower()
            block = CodeBlock(
                m.group("body"), "fence", m.start("body"), closed=m.group("close") is not None
            )
            if tag in LANGUAGE_TAGS[language]:
                tagged.append(block)
            elif not tag:
                untagged.append(block)
        return tagged or untagged
    if probe.prompt is not None and _prompt_is_code(probe, language):
        return [CodeBlock(probe.prompt + output, "completion", prompt_lines=_lines(probe.prompt))]
    return [CodeBlock(output, "output")]


def parse_failure(language: str, code: str, dialect: str | None = None) -> ParseFailure | None:
    """Parse ``code`` as ``language``; `None` when it parses."""
    if language == "python":
        return _python_failure(code)
    if language == "json":
        return _json_failure(code)
    return _sql_failure(code, dialect)


@register_detector
@dataclass(frozen=True)
class CodeDetector(Detector):
    """Flags code answers that do not parse in the probe's ``expect.language``."""

    name: ClassVar[str] = "code"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"code"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        rate(
            "code_parse_error",
            0.01,
            critical=True,
            relative_margin=0.5,
            reason="healthy models already write some code that does not parse; 1% more (or "
            "half again its base rate) is a model or decoding fault a user's build sees",
            explain=Explanation(
                spans=lambda v: syntax_span(v.text, v.located, v.prompt) if v.evidence else [],
                detail=lambda v: (
                    {k: v.evidence.get(k) for k in ("error", "line", "column", "language")}
                    if v.evidence
                    else {}
                ),
                lines=lambda d: [
                    f"{d.get('language')}: {d.get('error')} at line {d.get('line')}, "
                    f"column {d.get('column')}"
                ],
            ),
        ),
    )

    default_language: str = "python"
    """Language for code probes that declare no ``expect.language``."""

    def measure(self, inp: ScoringInput) -> list[Score]:
        language = str(inp.probe.expect.get("language", self.default_language)).lower()
        if language not in LANGUAGE_TAGS:
            raise ConfigError(
                f"probe {inp.probe.id!r}: expect.language {language!r} is not one of "
                f"{', '.join(sorted(LANGUAGE_TAGS))}"
            )
        output = inp.output_text or ""
        if not output.strip():
            return [_flag({"reason": "empty", "language": language})]
        blocks = extract_code(inp.probe, output, language)
        if not blocks:
            tags = sorted({m.group("tag") for m in _FENCE.finditer(output)})
            return [_flag({"reason": "no_code", "language": language, "fence_tags": tags})]
        dialect = inp.probe.expect.get("dialect")
        cut_off = inp.finish_reason != "stop"
        truncated: dict[str, Any] | None = None
        for index, block in enumerate(blocks):
            failure, trimmed = _parse_trimming_prose(language, block, dialect)
            if failure is None:
                continue
            evidence = _evidence(language, block, index, failure, trimmed)
            may_be_cut = cut_off and (block.source != "fence" or not block.closed)
            if may_be_cut and _looks_cut(failure, block.code, trimmed):
                truncated = truncated or {**evidence, "reason": "truncated"}
                continue
            return [_flag(evidence)]
        return [_CLEAN if truncated is None else Score("code_parse_error", 0.0, evidence=truncated)]


def _flag(evidence: dict[str, Any]) -> Score:
    return Score("code_parse_error", 1.0, flagged=True, evidence=evidence)


def _evidence(
    language: str, block: CodeBlock, index: int, failure: ParseFailure, trimmed: dict[str, int]
) -> dict[str, Any]:
    lines = block.code.splitlines()
    line_text = lines[failure.line - 1] if failure.line and 0 < failure.line <= len(lines) else ""
    evidence: dict[str, Any] = {
        "reason": "parse_error",
        "language": language,
        "error": clip(failure.message),
        "line": failure.line,
        "column": failure.column,
        "line_text": clip(line_text),
        "source": block.source,
        "block": index,
    }
    if block.source == "fence":
        evidence["offset"] = block.offset
    if block.prompt_lines:
        evidence["prompt_lines"] = block.prompt_lines
    if trimmed:
        evidence["trimmed"] = trimmed
    return evidence


def _parse_trimming_prose(
    language: str, block: CodeBlock, dialect: str | None
) -> tuple[ParseFailure | None, dict[str, int]]:
    """Parse the block; if it fails, retry without prose before/after the code.

    Returns the failure if any, and what was trimmed
    (``{"head_lines": …, "tail_lines": …}``, empty when nothing was). Failure lines are
    given in the block's own numbering.
    """
    code = block.code
    failure = parse_failure(language, code, dialect)
    if failure is None or block.source == "fence":
        return failure, {}
    lines = code.split("\n")
    start, end = _prose_bounds(lines, language, keep_head=block.prompt_lines)
    if (start, end) == (0, len(lines)):
        return failure, {}
    trimmed = "\n".join(lines[start:end])
    retry = parse_failure(language, trimmed, dialect)
    if retry is not None and retry.line is not None:
        retry = ParseFailure(retry.message, retry.line + start, retry.column, retry.incomplete)
    return retry, {"head_lines": start, "tail_lines": len(lines) - end}


def _prose_bounds(lines: list[str], language: str, keep_head: int) -> tuple[int, int]:
    """Line range of the code once leading prose ("Here is the function:") and everything
    from the first prose line after a blank line ("\\n\\nThis function returns…") are cut."""

    def is_prose(line: str) -> bool:
        if _PROSE.match(line) is None:
            return False
        return not (language == "sql" and _SQL_START.match(line))

    start = 0
    if keep_head == 0:
        while start < len(lines) and (not lines[start].strip() or is_prose(lines[start])):
            start += 1
        if start == len(lines):
            start = 0
    end = len(lines)
    for i in range(max(start + 1, keep_head), len(lines)):
        if is_prose(lines[i]) and not lines[i - 1].strip():
            end = i
            break
    return start, end


def _looks_cut(failure: ParseFailure, code: str, trimmed: dict[str, int]) -> bool:
    """Whether the failure is what a cut-off (rather than a wrong) program looks like."""
    if trimmed.get("tail_lines"):
        return False  # prose followed the code, so the code itself was not cut
    if failure.incomplete or failure.line is None:
        return True
    return failure.line >= _lines(code.rstrip())


def _prompt_is_code(probe: Probe, language: str) -> bool:
    declared = probe.expect.get("prefix_is_code")
    if declared is not None:
        return bool(declared)
    prompt = probe.prompt or ""
    if language == "python":
        failure = _python_failure(prompt)
        return failure is None or failure.incomplete
    if language == "json":
        return prompt.lstrip()[:1] in ("{", "[")
    return _SQL_START.match(prompt) is not None


def _lines(text: str) -> int:
    return text.count("\n") + 1


def _python_failure(code: str) -> ParseFailure | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes is not our business
            compile(code, "<output>", "exec", _PY_FLAGS)
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        return ParseFailure(message, exc.lineno, exc.offset, message == "incomplete input")
    except (ValueError, RecursionError, MemoryError) as exc:
        return ParseFailure(f"{type(exc).__name__}: {exc}", None, None)
    return None


def _json_failure(code: str) -> ParseFailure | None:
    try:
        json.loads(code)
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(code.rstrip())
        incomplete = at_end or exc.msg.startswith("Unterminated string")
        return ParseFailure(exc.msg, exc.lineno, exc.colno, incomplete)
    except RecursionError:
        return ParseFailure("nested too deeply", None, None)
    return None


def _sql_failure(code: str, dialect: str | None) -> ParseFailure | None:
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    try:
        statements = sqlglot.parse(code, read=dialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        message = str(first.get("description") or exc).splitlines()[0]
        incomplete = "TokenType.SENTINEL" in message
        return ParseFailure(_tidy_sqlglot(message), first.get("line"), first.get("col"), incomplete)
    except TokenError as exc:
        return ParseFailure(clip(str(exc)), None, None)
    except ValueError as exc:  # unknown dialect
        raise ConfigError(f"expect.dialect {dialect!r}: {exc}") from None
    parsed = [s for s in statements if s is not None]
    if not parsed:
        return ParseFailure("no SQL statement", None, None, incomplete=True)
    for statement in parsed:
        if not isinstance(statement, _sql_statement_types()):
            kind = type(statement).__name__
            return ParseFailure(f"not a SQL statement (parsed as {kind})", 1, 1)
    return None


@functools.cache
def _sql_statement_types() -> tuple[type, ...]:
    """sqlglot node types that are whole statements (prose parses as a bare ``Alias``)."""
    from sqlglot import exp

    names = (
        "Query", "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command",
        "Transaction", "Commit", "Rollback", "Use", "Set", "Describe", "Pragma", "Copy",
        "Analyze", "Show", "TruncateTable", "Grant",
    )  # fmt: skip
    return tuple(getattr(exp, name) for name in names if hasattr(exp, name))


def _tidy_sqlglot(message: str) -> str:
    def token(m: regex.Match[str]) -> str:
        return "end of input" if m.group(1) == "SENTINEL" else repr(m.group(2))

    return _SQLGLOT_TOKEN.sub(token, message)


def syntax_span(text: str, evidence: Mapping[str, Any] | None, prompt: str | None) -> list[Span]:
    """The character (or word) where the parser stopped, in the output's own offsets.

    The evidence holds a 1-based line and column inside the code block that was parsed: a fence
    body (starting at ``offset`` in the output), the whole output, or prompt + output for a
    completion, whose prompt lines come first.
    """
    ev = evidence or {}
    line, column = ev.get("line"), ev.get("column")
    if not text or not isinstance(line, int) or line < 1:
        return []
    if ev.get("source") == "fence":
        base = int(ev.get("offset") or 0)
        code = text[base:]
    elif ev.get("source") == "completion" and prompt:
        base, code = -len(prompt), prompt + text
    else:
        base, code = 0, text
    lines = code.split("\n")
    if line > len(lines):
        return []
    line_start = sum(len(x) + 1 for x in lines[: line - 1])
    col = max(0, min(int(column or 1) - 1, max(len(lines[line - 1]) - 1, 0)))
    at = base + line_start + col
    if at >= len(text):
        at = len(text) - 1
    if at < 0:
        return []  # the error is in the prompt part of a completion
    end = at + 1
    while end < len(text) and text[at].isalnum() and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return [Span(at, end, "syntax_error", str(ev.get("error", "syntax error")))]
